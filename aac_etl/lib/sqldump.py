r"""Load a MySQL dump (e.g. OpenCart's install SQL) into SQLite, MariaDB/MySQL or PostgreSQL.

The dump is split into statements by a small regex tokenizer that understands MySQL string escapes
(``\'``, ``\\``, ``\r``, ``\n``, doubled quotes), backtick identifiers and comments.

* MySQL / MariaDB targets receive the statements as written (only the table name is rewritten when a new
  prefix is asked for), under a permissive session ``sql_mode`` so zero dates and loose values load the way
  the shop's own installer loads them.
* Other targets (SQLite, PostgreSQL) get tables built from the parsed ``CREATE TABLE`` column definitions as
  portable SQLAlchemy types, and rows inserted as bound parameters. ``'0000-00-00'`` dates become NULL
  (their columns are made nullable), and function calls inside ``VALUES`` (``CONCAT``,
  ``YEAR(CURDATE())``, ``NOW()``) are evaluated in Python.

sqlglot was considered: it transpiles the DDL, but the data-level fixes (zero dates, NOT NULL relaxation,
typed parameters, sequence resets) are needed anyway, so a small dedicated parser is simpler to keep correct.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import sqlalchemy as sa

log = logging.getLogger(__name__)

MYSQL_PERMISSIVE_SQL_MODE = "NO_ENGINE_SUBSTITUTION"
"""Session sql_mode for MySQL targets: no STRICT_*, no NO_ZERO_DATE, so install dumps load as-is."""

INSERT_BATCH_ROWS = 1_000


class SqlDumpError(ValueError):
    """The dump contains something this loader cannot parse or evaluate."""


class _Tok(NamedTuple):
    kind: str
    text: str
    start: int
    end: int


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<comment>--[^\n]*|\#[^\n]*|/\*.*?\*/)
    |(?P<str>'(?:[^'\\]|\\.|'')*')
    |(?P<dstr>"(?:[^"\\]|\\.|"")*")
    |(?P<ident>`(?:[^`]|``)*`)
    |(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
    |(?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
    |(?P<punct>[(),;.=*+\-/<>!%:@{}\[\]|&^~?])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}
_ESCAPE_RE = re.compile(r"\\(.)|''|\"\"", re.DOTALL)


def _unescape_string(token: str) -> str:
    """Decode a quoted MySQL string literal (quotes included) into its value."""
    body = token[1:-1]

    def repl(match: re.Match[str]) -> str:
        char = match.group(1)
        if char is None:
            return match.group(0)[0]
        if char in "%_":
            return "\\" + char
        return _ESCAPES.get(char, char)

    return _ESCAPE_RE.sub(repl, body)


def _ident(tok: _Tok) -> str:
    if tok.kind == "ident":
        return tok.text[1:-1].replace("``", "`")
    return tok.text


def _tokenize(text: str) -> Iterator[_Tok]:
    pos, size = 0, len(text)
    match_at = _TOKEN_RE.match
    while pos < size:
        match = match_at(text, pos)
        if match is None:
            line = text.count("\n", 0, pos) + 1
            raise SqlDumpError(f"cannot tokenize dump at line {line}: {text[pos : pos + 40]!r}")
        kind = match.lastgroup or ""
        end = match.end()
        if kind not in ("ws", "comment"):
            yield _Tok(kind, match.group(), pos, end)
        pos = end


@dataclass
class _Statement:
    tokens: list[_Tok]
    start: int
    end: int

    def word(self, index: int) -> str:
        tok = self.tokens[index] if index < len(self.tokens) else None
        return tok.text.upper() if tok is not None and tok.kind == "word" else ""


def _statements(text: str) -> Iterator[_Statement]:
    current: list[_Tok] = []
    for tok in _tokenize(text):
        if tok.kind == "punct" and tok.text == ";":
            if current:
                yield _Statement(current, current[0].start, current[-1].end)
            current = []
        else:
            current.append(tok)
    if current:
        yield _Statement(current, current[0].start, current[-1].end)


def _split_top_level(tokens: Sequence[_Tok]) -> list[list[_Tok]]:
    """Split tokens at depth-0 commas."""
    parts: list[list[_Tok]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.kind == "punct":
            if tok.text == "(":
                depth += 1
            elif tok.text == ")":
                depth -= 1
            elif tok.text == "," and depth == 0:
                parts.append([])
                continue
        parts[-1].append(tok)
    return [p for p in parts if p]


def _group_end(tokens: Sequence[_Tok], open_index: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``open_index``."""
    depth = 0
    for index in range(open_index, len(tokens)):
        tok = tokens[index]
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
            if depth == 0:
                return index
    raise SqlDumpError("unbalanced parentheses in statement")


# --------------------------------------------------------------------------------------------- DDL


@dataclass
class _ColumnDef:
    name: str
    type_name: str
    type_args: list[str]
    unsigned: bool = False
    nullable: bool = True
    default: Any = None
    has_default: bool = False
    auto_increment: bool = False
    primary_key: bool = False


@dataclass
class _TableDef:
    name: str
    columns: list[_ColumnDef] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    indexes: list[tuple[str, list[str], bool]] = field(default_factory=list)


def _index_columns(tokens: Sequence[_Tok]) -> list[str]:
    """Column names of ``(`a`, `b`(32))``: prefix lengths and ASC/DESC are dropped."""
    open_index = next(i for i, t in enumerate(tokens) if t.kind == "punct" and t.text == "(")
    inner = tokens[open_index + 1 : _group_end(tokens, open_index)]
    return [_ident(part[0]) for part in _split_top_level(inner)]


def _literal_value(tok: _Tok) -> Any:
    if tok.kind == "str":
        return _unescape_string(tok.text)
    if tok.kind == "dstr":
        return _unescape_string(tok.text)
    if tok.kind == "num":
        return Decimal(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
    if tok.kind == "word" and tok.text.upper() == "NULL":
        return None
    return sa.text(tok.text)


def _parse_column(tokens: Sequence[_Tok]) -> _ColumnDef:
    col = _ColumnDef(name=_ident(tokens[0]), type_name=tokens[1].text.lower(), type_args=[])
    index = 2
    if index < len(tokens) and tokens[index].text == "(":
        close = _group_end(tokens, index)
        col.type_args = [
            str(_literal_value(part[0])) if part[0].kind in ("str", "num") else part[0].text
            for part in _split_top_level(tokens[index + 1 : close])
        ]
        index = close + 1
    while index < len(tokens):
        word = tokens[index].text.upper()
        nxt = tokens[index + 1].text.upper() if index + 1 < len(tokens) else ""
        if word == "UNSIGNED":
            col.unsigned = True
        elif word == "NOT" and nxt == "NULL":
            col.nullable = False
            index += 1
        elif word == "DEFAULT":
            index += 1
            col.has_default = True
            col.default = _literal_value(tokens[index])
            if index + 1 < len(tokens) and tokens[index + 1].text == "(":
                index = _group_end(tokens, index + 1)
        elif word == "AUTO_INCREMENT":
            col.auto_increment = True
        elif word == "PRIMARY" and nxt == "KEY":
            col.primary_key = True
            index += 1
        elif word in ("COMMENT", "COLLATE", "CHARSET"):
            index += 1
        elif word == "CHARACTER" and nxt == "SET":
            index += 2
        elif word == "ON" and nxt == "UPDATE":
            index += 2
            if index + 1 < len(tokens) and tokens[index + 1].text == "(":
                index = _group_end(tokens, index + 1)
        index += 1
    return col


def _parse_create(stmt: _Statement) -> tuple[_TableDef, int]:
    """Parse ``CREATE TABLE``; return the definition and the token index of the table name."""
    toks = stmt.tokens
    index = 1
    while toks[index].kind == "word" and toks[index].text.upper() in (
        "TEMPORARY",
        "TABLE",
        "IF",
        "NOT",
        "EXISTS",
    ):
        index += 1
    name_index = index
    table = _TableDef(name=_ident(toks[index]))
    open_index = index + 1
    if toks[open_index].text != "(":
        raise SqlDumpError(f"CREATE TABLE {table.name}: only column-list definitions are supported")
    close = _group_end(toks, open_index)
    for part in _split_top_level(toks[open_index + 1 : close]):
        head = part[0].text.upper() if part[0].kind == "word" else ""
        if head == "PRIMARY":
            table.primary_key = _index_columns(part)
        elif head in ("KEY", "INDEX", "UNIQUE"):
            unique = head == "UNIQUE"
            rest = part[1:]
            if rest and rest[0].kind == "word" and rest[0].text.upper() in ("KEY", "INDEX"):
                rest = rest[1:]
            name = _ident(rest[0]) if rest and rest[0].text != "(" else ""
            columns = _index_columns(part)
            table.indexes.append((name or "_".join(columns), columns, unique))
        elif head in ("FULLTEXT", "SPATIAL", "CONSTRAINT", "FOREIGN", "CHECK"):
            continue
        else:
            table.columns.append(_parse_column(part))
    for col in table.columns:
        if col.primary_key and col.name not in table.primary_key:
            table.primary_key.append(col.name)
    return table, name_index


def _sa_type(col: _ColumnDef) -> sa.types.TypeEngine[Any]:
    name, args = col.type_name, col.type_args
    if name in ("tinyint", "smallint"):
        return sa.SmallInteger() if not col.unsigned or name == "tinyint" else sa.Integer()
    if name in ("int", "integer", "mediumint"):
        return sa.BigInteger() if col.unsigned and name != "mediumint" else sa.Integer()
    if name == "bigint":
        return sa.BigInteger()
    if name in ("decimal", "numeric", "dec", "fixed"):
        precision = int(args[0]) if args else 10
        scale = int(args[1]) if len(args) > 1 else 0
        return sa.Numeric(precision, scale)
    if name in ("float", "real"):
        return sa.Float()
    if name == "double":
        return sa.Double()
    if name in ("char", "varchar"):
        return sa.String(int(args[0])) if args else sa.Text()
    if name in ("enum",):
        return sa.String(max((len(a) for a in args), default=1))
    if name in ("tinytext", "text", "mediumtext", "longtext", "json", "set"):
        return sa.Text()
    if name in ("tinyblob", "blob", "mediumblob", "longblob", "binary", "varbinary"):
        return sa.LargeBinary()
    if name == "date":
        return sa.Date()
    if name in ("datetime", "timestamp"):
        return sa.DateTime()
    if name == "time":
        return sa.Time()
    if name in ("year", "bit", "bool", "boolean"):
        return sa.SmallInteger()
    raise SqlDumpError(f"unsupported MySQL column type {name!r} (column {col.name})")


def _is_zero_date(value: Any) -> bool:
    return isinstance(value, str) and (value.startswith("0000") or value[5:7] == "00" or value[8:10] == "00")


def _build_table(tdef: _TableDef, name: str, md: sa.MetaData) -> sa.Table:
    columns: list[sa.Column[Any]] = []
    single_pk = tdef.primary_key[0] if len(tdef.primary_key) == 1 else None
    for col in tdef.columns:
        kind = _sa_type(col)
        temporal = isinstance(kind, (sa.Date, sa.DateTime, sa.Time))
        server_default: Any = None
        if col.has_default and col.default is not None:
            if isinstance(col.default, sa.TextClause):
                server_default = col.default if col.default.text.upper().startswith("CURRENT") else None
            elif not (temporal and _is_zero_date(col.default)):
                server_default = str(col.default)
        in_pk = col.name in tdef.primary_key
        columns.append(
            sa.Column(
                col.name,
                kind,
                primary_key=in_pk,
                nullable=in_pk is False and (col.nullable or temporal),
                autoincrement=bool(col.auto_increment and col.name == single_pk),
                server_default=server_default,
            )
        )
    table = sa.Table(name, md, *columns)
    for index_name, index_columns, unique in tdef.indexes:
        full = f"ix_{name}_{index_name}"
        if len(full) > 60:
            full = full[:60]
        sa.Index(full, *(table.c[c] for c in index_columns), unique=unique)
    return table


# -------------------------------------------------------------------------------------------- values


def _coerce_date(value: Any) -> Any:
    if value is None or isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text or _is_zero_date(text):
        return None
    return dt.date.fromisoformat(text[:10])


def _coerce_datetime(value: Any) -> Any:
    if value is None or isinstance(value, dt.datetime):
        return value
    text = str(value).strip()
    if not text or _is_zero_date(text):
        return None
    return dt.datetime.fromisoformat(text)


def _coerce_int(value: Any) -> Any:
    if value is None or isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        return int(Decimal(text))


def _coerce_decimal(value: Any) -> Any:
    if value is None or isinstance(value, Decimal):
        return value
    text = str(value).strip()
    try:
        return Decimal(text) if text else Decimal(0)
    except InvalidOperation as exc:
        raise SqlDumpError(f"not a number: {text!r}") from exc


def _coerce_float(value: Any) -> Any:
    if value is None:
        return None
    text = str(value).strip()
    return float(text) if text else 0.0


def _coerce_str(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _coerce_bytes(value: Any) -> Any:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _coercer(kind: sa.types.TypeEngine[Any]) -> Callable[[Any], Any]:
    if isinstance(kind, sa.DateTime):
        return _coerce_datetime
    if isinstance(kind, sa.Date):
        return _coerce_date
    if isinstance(kind, sa.Integer):
        return _coerce_int
    if isinstance(kind, sa.Float):
        return _coerce_float
    if isinstance(kind, sa.Numeric):
        return _coerce_decimal
    if isinstance(kind, sa.LargeBinary):
        return _coerce_bytes
    if isinstance(kind, (sa.String, sa.Text)):
        return _coerce_str
    return lambda value: value


def _fn_concat(args: list[Any]) -> Any:
    if any(a is None for a in args):
        return None
    return "".join(str(a) for a in args)


def _fn_year(args: list[Any]) -> Any:
    value = args[0]
    if isinstance(value, dt.date):
        return value.year
    return None if value is None else int(str(value)[:4])


_FUNCTIONS: dict[str, Callable[[list[Any]], Any]] = {
    "CONCAT": _fn_concat,
    "YEAR": _fn_year,
    "CURDATE": lambda _args: dt.date.today(),
    "CURRENT_DATE": lambda _args: dt.date.today(),
    "NOW": lambda _args: dt.datetime.now().replace(microsecond=0),
    "CURRENT_TIMESTAMP": lambda _args: dt.datetime.now().replace(microsecond=0),
    "LOWER": lambda args: None if args[0] is None else str(args[0]).lower(),
    "UPPER": lambda args: None if args[0] is None else str(args[0]).upper(),
}


def _eval_expr(tokens: Sequence[_Tok]) -> Any:
    """Evaluate one ``VALUES`` item: a literal, a signed number or a supported function call."""
    if not tokens:
        raise SqlDumpError("empty value in VALUES")
    first = tokens[0]
    if len(tokens) == 1:
        if first.kind in ("str", "dstr", "num"):
            return _literal_value(first)
        word = first.text.upper()
        if word == "NULL":
            return None
        if word in ("TRUE", "FALSE"):
            return int(word == "TRUE")
        if word in _FUNCTIONS:
            return _FUNCTIONS[word]([])
    if first.kind == "punct" and first.text in "-+" and len(tokens) == 2 and tokens[1].kind == "num":
        value = _literal_value(tokens[1])
        return -value if first.text == "-" else value
    if first.kind == "word" and len(tokens) >= 3 and tokens[1].text == "(" and tokens[-1].text == ")":
        name = first.text.upper()
        if name not in _FUNCTIONS:
            raise SqlDumpError(f"unsupported function {first.text}() in VALUES")
        args = [_eval_expr(arg) for arg in _split_top_level(tokens[2:-1])]
        return _FUNCTIONS[name](args)
    raise SqlDumpError(f"unsupported expression in VALUES: {' '.join(t.text for t in tokens)[:80]}")


@dataclass
class _Insert:
    table: str
    name_index: int
    columns: list[str] | None
    tuples: list[list[_Tok]]


def _parse_insert(stmt: _Statement) -> _Insert:
    toks = stmt.tokens
    index = 1
    while toks[index].kind == "word" and toks[index].text.upper() in (
        "IGNORE",
        "INTO",
        "LOW_PRIORITY",
        "DELAYED",
    ):
        index += 1
    name_index = index
    table = _ident(toks[index])
    index += 1
    columns: list[str] | None = None
    if toks[index].text == "(":
        close = _group_end(toks, index)
        columns = [_ident(p[0]) for p in _split_top_level(toks[index + 1 : close])]
        index = close + 1
    if toks[index].text.upper() not in ("VALUES", "VALUE"):
        raise SqlDumpError(f"INSERT INTO {table}: only INSERT ... VALUES is supported")
    tuples = _split_top_level(toks[index + 1 :])
    return _Insert(table, name_index, columns, tuples)


def _rows(insert: _Insert, table: sa.Table) -> list[dict[str, Any]]:
    names = insert.columns or [c.name for c in table.columns]
    missing = [n for n in names if n not in table.c]
    if missing:
        raise SqlDumpError(f"INSERT INTO {table.name}: unknown columns {missing}")
    coercers = [_coercer(table.c[n].type) for n in names]
    rows: list[dict[str, Any]] = []
    for group in insert.tuples:
        if group[0].text != "(" or group[-1].text != ")":
            raise SqlDumpError(f"INSERT INTO {table.name}: malformed VALUES tuple")
        values = [_eval_expr(part) for part in _split_top_level(group[1:-1])]
        if len(values) != len(names):
            raise SqlDumpError(f"INSERT INTO {table.name}: {len(values)} values for {len(names)} columns")
        rows.append({n: f(v) for n, f, v in zip(names, coercers, values, strict=True)})
    return rows


# ------------------------------------------------------------------------------------------- loading


@dataclass
class _Plan:
    """Name handling shared by both target kinds."""

    tables: set[str] | None
    source_prefix: str
    prefix: str | None

    def target_name(self, name: str) -> str | None:
        """Name of the table in the target database, or None when the filter excludes it."""
        bare = name[len(self.source_prefix) :] if name.startswith(self.source_prefix) else name
        if self.tables is not None and name not in self.tables and bare not in self.tables:
            return None
        if self.prefix is not None and name.startswith(self.source_prefix):
            return self.prefix + bare
        return name


def _quote_mysql(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _load_mysql(text: str, engine: sa.Engine, plan: _Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        cursor = conn.connection.cursor()
        cursor.execute(f"SET SESSION sql_mode = '{MYSQL_PERMISSIVE_SQL_MODE}'")
        cursor.execute("SET NAMES utf8mb4")
        for stmt in _statements(text):
            verb = stmt.word(0)
            if verb == "DROP" and stmt.word(1) == "TABLE":
                name_tok = stmt.tokens[-1]
                target = plan.target_name(_ident(name_tok))
                if target is not None:
                    cursor.execute(f"DROP TABLE IF EXISTS {_quote_mysql(target)}")
                continue
            if verb == "CREATE" and "TABLE" in (stmt.word(1), stmt.word(2)):
                tdef, name_index = _parse_create(stmt)
                target = plan.target_name(tdef.name)
                if target is None:
                    continue
                counts.setdefault(target, 0)
            elif verb in ("INSERT", "REPLACE"):
                insert = _parse_insert(stmt)
                target = plan.target_name(insert.table)
                if target is None:
                    continue
                name_index = insert.name_index
                counts[target] = counts.get(target, 0) + len(insert.tuples)
            else:
                continue
            name_tok = stmt.tokens[name_index]
            sql = text[stmt.start : name_tok.start] + _quote_mysql(target) + text[name_tok.end : stmt.end]
            cursor.execute(sql)
        cursor.close()
    return counts


def _reset_sequences(conn: sa.Connection, tables: Collection[sa.Table]) -> None:
    """After explicit ids were inserted, move PostgreSQL serial sequences past the largest id."""
    for table in tables:
        for col in table.primary_key.columns:
            if col.autoincrement is not True:
                continue
            seq = conn.execute(
                sa.text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": col.name}
            ).scalar()
            if seq:
                quote = conn.dialect.identifier_preparer.quote
                top = f"SELECT MAX({quote(col.name)}) FROM {quote(table.name)}"
                conn.execute(sa.text(f"SELECT setval(:s, COALESCE(({top}), 0) + 1, false)"), {"s": seq})


def _load_generic(text: str, engine: sa.Engine, plan: _Plan) -> dict[str, int]:
    counts: dict[str, int] = {}
    md = sa.MetaData()
    created: dict[str, sa.Table] = {}
    with engine.begin() as conn:
        for stmt in _statements(text):
            verb = stmt.word(0)
            if verb == "DROP" and stmt.word(1) == "TABLE":
                target = plan.target_name(_ident(stmt.tokens[-1]))
                if target is not None:
                    sa.Table(target, sa.MetaData()).drop(conn, checkfirst=True)
                    if target in md.tables:
                        md.remove(md.tables[target])
                        created.pop(target, None)
            elif verb == "CREATE" and "TABLE" in (stmt.word(1), stmt.word(2)):
                tdef, _ = _parse_create(stmt)
                target = plan.target_name(tdef.name)
                if target is None:
                    continue
                if target in md.tables:
                    md.remove(md.tables[target])
                table = _build_table(tdef, target, md)
                table.create(conn, checkfirst=True)
                created[target] = table
                counts.setdefault(target, 0)
            elif verb in ("INSERT", "REPLACE"):
                insert = _parse_insert(stmt)
                target = plan.target_name(insert.table)
                if target is None:
                    continue
                table = md.tables.get(target)
                if table is None:
                    table = sa.Table(target, md, autoload_with=conn)
                rows = _rows(insert, table)
                for start in range(0, len(rows), INSERT_BATCH_ROWS):
                    conn.execute(table.insert(), rows[start : start + INSERT_BATCH_ROWS])
                counts[target] = counts.get(target, 0) + len(rows)
            elif verb not in ("SET", "LOCK", "UNLOCK", "START", "COMMIT", "BEGIN", "USE", ""):
                log.debug("sqldump: skipping %s statement", verb)
        if engine.dialect.name == "postgresql":
            _reset_sequences(conn, list(created.values()))
    return counts


def load_mysql_dump(
    dump_path: Path,
    url: str,
    *,
    tables: Collection[str] | None = None,
    prefix: str | None = None,
    source_prefix: str = "oc_",
) -> dict[str, int]:
    """Load a MySQL dump file into the database at ``url``.

    ``DROP TABLE`` / ``CREATE TABLE`` / ``INSERT`` statements are applied; other statements (``SET``,
    ``LOCK TABLES``, conditional comments) are skipped. The load runs in one transaction.

    Args:
        dump_path: The ``.sql`` file (UTF-8).
        url: SQLAlchemy URL of the target: ``sqlite:///...``, ``mysql+pymysql://...``,
            ``postgresql+psycopg://...``.
        tables: Load only these tables; names as in the dump (``oc_product``) or without the source
            prefix (``product``). None loads every table.
        prefix: Rewrite the table prefix: tables named ``<source_prefix>X`` are created as ``<prefix>X``.
        source_prefix: The prefix the dump uses.

    Returns:
        Rows inserted per target table name (tables created without rows count 0).

    Raises:
        SqlDumpError: A statement or value cannot be parsed or evaluated.

    """
    text = dump_path.read_text(encoding="utf-8")
    return load_mysql_text(text, url, tables=tables, prefix=prefix, source_prefix=source_prefix)


def load_mysql_text(
    text: str,
    url: str,
    *,
    tables: Collection[str] | None = None,
    prefix: str | None = None,
    source_prefix: str = "oc_",
) -> dict[str, int]:
    """Load MySQL dump text into the database at ``url``; see :func:`load_mysql_dump`.

    Args:
        text: The SQL text.
        url: SQLAlchemy URL of the target.
        tables: Optional table filter.
        prefix: Optional new table prefix.
        source_prefix: The prefix the dump uses.

    Returns:
        Rows inserted per target table name.

    """
    plan = _Plan(tables=set(tables) if tables is not None else None, source_prefix=source_prefix, prefix=prefix)
    engine = sa.create_engine(url)
    try:
        if engine.dialect.name in ("mysql", "mariadb"):
            return _load_mysql(text, engine, plan)
        return _load_generic(text, engine, plan)
    finally:
        engine.dispose()
