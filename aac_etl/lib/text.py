"""Plain-text rendering of catalog text: HTML, shortcodes, markdown and rich-text JSON.

Every step is a vectorized polars operation over a whole column. The only per-value Python is

* entity decoding, which runs once per *distinct* entity found in the column (``&rsquo;``, ``&#8217;``, ...)
  and is then applied with one Aho-Corasick pass (``str.replace_many``), and
* rich-text JSON rendering, which only touches the rare values that start with ``{`` or ``[`` and parse
  as JSON.

Pipeline of :func:`clean_text` (each piece is a public function too):

1. rich-text JSON (Shopify, Contentful, Strapi blocks, Portable Text, Editor.js) -> text with inline HTML;
2. double-encoded HTML (``&lt;p&gt;...``, as OpenCart and PrestaShop fixtures store it) is decoded once;
3. WordPress-style shortcodes are removed, their inner text kept;
4. markdown syntax is removed (only when the source says its text is markdown);
5. ``<script>``/``<style>`` elements and comments are dropped, block-level tags and ``<br>`` become a
   space, every other tag is removed;
6. named (HTML5 table) and numeric entities are decoded;
7. whitespace is collapsed (non-breaking and other Unicode spaces count as whitespace) and trimmed;
   an empty result becomes null.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

__all__ = [
    "BLOCK_TAGS",
    "KNOWN_SHORTCODES",
    "ByteProfile",
    "beside_other_work",
    "clean_text",
    "collapse_whitespace",
    "collapse_whitespace_series",
    "data_bytes",
    "decode_entities",
    "decode_if_double_encoded",
    "html_to_text",
    "looks_double_encoded",
    "markdown_to_text",
    "may_hold_bytes",
    "render_rich_text",
    "rich_text_to_text",
    "strip_shortcodes",
    "strip_tags",
]

BLOCK_TAGS: frozenset[str] = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "col", "colgroup",
        "dd", "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hgroup", "hr",
        "html", "iframe", "legend", "li", "main", "menu", "nav", "noscript", "ol", "optgroup", "option", "p",
        "pre", "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "title", "tr", "ul",
    }
)  # fmt: skip
"""Tags whose start or end separates words (rendered as a space). Other tags are removed without a trace."""

KNOWN_SHORTCODES: frozenset[str] = frozenset(
    {
        "caption", "wp_caption", "gallery", "audio", "video", "playlist", "embed", "product", "products",
        "product_page", "product_category", "product_categories", "add_to_cart", "add_to_cart_url",
        "contact-form-7", "contact-form", "shop_messages", "woocommerce_cart", "woocommerce_checkout",
        "recent_products", "featured_products", "sale_products", "best_selling_products",
        "top_rated_products",
        "related_products", "row", "column", "col", "button", "tabs", "tab", "accordion", "toggle", "divider",
        "spacer", "icon", "quote", "pullquote", "dropcap", "highlight", "one_half", "one_third", "two_third",
        "one_fourth", "three_fourth", "one_half_last", "one_third_last", "two_third_last", "one_fourth_last",
        "three_fourth_last",
    }
)  # fmt: skip
"""Shortcode names stripped even without attributes or a closing tag (``[gallery]``, ``[row]``)."""

# Page-builder families whose every tag is a shortcode (WPBakery, Divi, Avada, Enfold, Flatsome, Jupiter).
_SHORTCODE_PREFIXES = ("vc_", "et_pb_", "fusion_", "av_", "ux_", "mk_")

# --- HTML --------------------------------------------------------------------------------------------------
_ATTRS = r"""(?:[^>"']|"[^"]*"|'[^']*')*"""
_DROPPED_ELEMENTS = (
    r"(?s)<!--.*?-->"
    r"|(?is)<script\b" + _ATTRS + r">.*?</script\s*>"
    r"|(?is)<style\b" + _ATTRS + r">.*?</style\s*>"
    r"|(?is)<script\b" + _ATTRS + r"/>"
)
# ``<`` stays outside the case-insensitive group so that the regex engine can skip to it with memchr.
_BLOCK_TAG = r"</?(?i:" + "|".join(sorted(BLOCK_TAGS, key=len, reverse=True)) + r")(?:[\s/]" + _ATTRS + r")?>"
_ANY_TAG = r"(?i)</?[a-z][a-z0-9:._-]*(?:[\s/]" + _ATTRS + r")?>|<![^>]*>|<\?[^>]*>"
# A run of markup and the whitespace after it; the unit of the markup dictionary. It starts at ``<`` so
# that the literal pass only stops at ``<`` and ``&``.
_MARKUP_RUN = r"(?s)(?:(?:<!--.*?-->|(?i)</?[a-z][a-z0-9:._-]*(?:[\s/]" + _ATTRS + r")?>|<![^>]*>|<\?[^>]*>)\s*)+"
_ENCODED_MARKUP_RUN = r"(?s)(?:(?:&lt;!--.*?--&gt;|(?i)&lt;/?[a-z][a-z0-9:._-]*(?:[\s/].*?)?&gt;|&lt;!.*?&gt;)\s*)+"
_WHOLE_MARKUP_RUN = r"^(?:" + _MARKUP_RUN + r")$"
_DROP_ELEMENT_TAG = r"(?i)</?(?:script|style)\b"
# Literal openers of what _DROPPED_ELEMENTS removes, for a fast scan (a superset: no word boundary). ``ſ`` (long s)
# is there because the regex's case-insensitive ``s`` matches it too.
_DROPPED_OPENERS = ["<!--", "<script", "<style", "<\u017fcript", "<\u017ftyle"]
_ENCODED_DROPPED_OPENERS = ["&lt;" + opener[1:] for opener in _DROPPED_OPENERS]
_MARKUP_SAMPLE_ROWS = 2_000
_SMALL_PERIODS = 2 * 3 * 5 * 7
_DISTINCT_MIN_ROWS = 2_000
_DISTINCT_SAMPLE_ROWS = 1_000
_MARKUP_MAX_PATTERNS = 20_000
# A column this long or this large runs its steps on the streaming engine: about where a lone column of short values
# (8,000 values) or of ~1.3 KB descriptions (1 MB) took as long on either engine.
_STREAMING_MIN_ROWS = 8_000
_STREAMING_MIN_BYTES = 1_000_000
_BESIDE_OTHER_WORK: ContextVar[bool] = ContextVar("aac_etl_text_beside_other_work", default=False)
# Decoded ``<``/``>`` are parked on these noncharacters while the tag fallbacks run, so that text such as
# ``&lt;b&gt;`` is never mistaken for markup.
_LT_PLACEHOLDER = "\ufdd0"
_GT_PLACEHOLDER = "\ufdd1"
_PLACEHOLDER_PATTERN = f"[{_LT_PLACEHOLDER}{_GT_PLACEHOLDER}]"

_REAL_TAG = r"<(?:/?[A-Za-z][A-Za-z0-9]*[\s/>]|!--)"
_ENCODED_TAG = r"&lt;(?:/?[A-Za-z][A-Za-z0-9]*(?:\s|/?&gt;)|!--)"
_ENCODED_ENTITY = r"&amp;(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,8}|#[xX][0-9A-Fa-f]{1,8});"

# One token per place ``html.unescape`` would look at: maximal, so replacing the distinct tokens with
# leftmost-longest matching gives exactly what ``html.unescape`` gives for the whole value.
_ENTITY_REF = r"&(?:#[0-9]+;?|#[xX][0-9A-Fa-f]+;?|[A-Za-z][A-Za-z0-9]{0,31};?)"
_NUMERIC_REF = r"&#[0-9]+;?|&#[xX][0-9A-Fa-f]+;?"
# What an escaping function writes (htmlspecialchars, html.escape) besides numeric references.
_ESCAPES: dict[str, str] = {"&lt;": "<", "&gt;": ">", "&amp;": "&", "&quot;": '"', "&apos;": "'"}
# A named token other than those five: a longer name, a missing ``;``, or another name.
_NONSTANDARD_NAMED_ENTITY = (
    r"&(?:lt|gt|amp|quot|apos)(?:[^;]|$)"
    r"|&(?:[b-fh-km-pr-zA-Z]|a(?:[^mp]|$)|am(?:[^p]|$)|ap(?:[^o]|$)|apo(?:[^s]|$)|g(?:[^t]|$)|l(?:[^t]|$)"
    r"|q(?:[^u]|$)|qu(?:[^o]|$)|quo(?:[^t]|$))"
)
# An entity escaped once more (``&amp;rsquo;``), as double-encoded HTML holds the entities of its text.
_ESCAPED_REF = r"&(?:amp;|#38;|#[xX]26;)(?:#[0-9]+;?|#[xX][0-9A-Fa-f]+;?|[A-Za-z][A-Za-z0-9]{0,31};?)"
_ESCAPED_AMPERSANDS = ["&amp;", "&#38;", "&#x26;"]
"""Literal starts of :data:`_ESCAPED_REF` (matched ASCII case-insensitively), to pick the values worth its scan."""

# --- whitespace --------------------------------------------------------------------------------------------
# Rust's \s is Unicode White_Space: covers \u00a0 (nbsp), \u2000-\u200a, \u202f, \u3000, line separators.
_WS_RUN = r"\s{2,}|[^\S ]"
# UTF-8 lead bytes of every non-ASCII White_Space character (U+0085, U+00A0, U+1680, U+2000-U+205F, U+3000).
_WS_LEAD_BYTES = [0xC2, 0xE1, 0xE2, 0xE3]

# --- shortcodes --------------------------------------------------------------------------------------------
_SC_NAME = r"[A-Za-z][A-Za-z0-9_-]*"
_SC_ATTR_TAG = r"\[" + _SC_NAME + r"\s+[A-Za-z_][A-Za-z0-9_-]*\s*=[^\]\n]*\]"
_SC_SELF_CLOSING = r"\[" + _SC_NAME + r"(?:\s[^\]\n]*)?\s*/\]"
_SC_CLOSING = r"\[/(" + _SC_NAME + r")\]"
_SC_FAMILY = r"\[/?(?:" + "|".join(_SHORTCODE_PREFIXES) + r")[A-Za-z0-9_-]*(?:\s[^\]\n]*)?\]"


def _named_shortcodes_pattern(names: Iterable[str]) -> str:
    alternatives = "|".join(re.escape(n) for n in sorted(set(names), key=len, reverse=True))
    return r"\[(?:" + alternatives + r")(?:\s[^\]\n]*)?/?\]"


_SC_KNOWN = _named_shortcodes_pattern(KNOWN_SHORTCODES)

# --- markdown ----------------------------------------------------------------------------------------------
_MD_RULES: tuple[tuple[str, str], ...] = (
    (r"(?m)^[ \t]*(?:```|~~~)[^\n]*$", ""),  # code fences (content kept)
    (r"(?m)^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S+.*$", ""),  # reference definitions
    (r"(?m)^[ \t]{0,3}(?:[-*_][ \t]*){3,}$", ""),  # thematic breaks
    (r"(?m)^[ \t]{0,3}(?:=+|-+)[ \t]*$", ""),  # setext heading underlines
    (r"(?m)^[ \t]{0,3}#{1,6}(?:[ \t]+|$)", ""),  # ATX heading markers
    (r"(?m)[ \t]+#+[ \t]*$", ""),  # closing ATX markers
    (r"(?m)^[ \t]*(?:>[ \t]?)+", ""),  # blockquote markers
    (r"(?m)^[ \t]*(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?", ""),  # list markers (+ task boxes)
    (r"(?m)^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|)+[ \t]*(?::?-{3,}:?)?[ \t]*$", ""),  # table separator rows
    (r"!\[([^\]\n]*)\]\([^)\n]*\)", "${1}"),  # images -> alt
    (r"!\[([^\]\n]*)\]\[[^\]\n]*\]", "${1}"),  # reference images -> alt
    (r"\[([^\]\n]*)\]\([^)\n]*\)", "${1}"),  # links -> text
    (r"\[([^\]\n]+)\]\[[^\]\n]*\]", "${1}"),  # reference links -> text
    (r"<((?:https?|ftp)://[^>\s]+|[^@>\s]+@[^@>\s]+\.[^@>\s]+)>", "${1}"),  # autolinks
    (r"`+([^`]*[^`\s][^`]*)`+", "${1}"),  # code spans
    (r"\*\*\*([^*\n]+)\*\*\*", "${1}"),
    (r"\*\*([^*\n]+)\*\*", "${1}"),
    (r"\*([^*\s](?:[^*\n]*[^*\s])?)\*", "${1}"),
    (r"~~([^~\n]+)~~", "${1}"),
    (r"(^|[^\w])___([^_\n]+)___([^\w]|$)", "${1}${2}${3}"),
    (r"(^|[^\w])__([^_\n]+)__([^\w]|$)", "${1}${2}${3}"),
    (r"(^|[^\w])_([^_\s](?:[^_\n]*[^_\s])?)_([^\w]|$)", "${1}${2}${3}"),
    (r"(?m)\|", " "),  # table cell separators
    (r"\\([\\`*_{}\[\]()#+\-.!>~|])", "${1}"),  # backslash escapes
)

# --- rich text JSON ----------------------------------------------------------------------------------------
_RICH_TEXT_KEYS = frozenset({"text", "value", "children", "content", "blocks"})
_CHILD_KEYS = ("children", "content", "blocks", "items")
_INLINE_NODE_TYPES = frozenset(
    {
        "text", "span", "link", "hyperlink", "entry-hyperlink", "asset-hyperlink", "resource-hyperlink",
        "embedded-entry-inline", "inline", "mark", "strong", "em", "bold", "italic", "code", "a", "emoji",
        "mention", "hardbreak",
    }
)  # fmt: skip


@contextmanager
def beside_other_work() -> Iterator[None]:
    """Render text without spreading a column over every core while the block runs: its caller keeps them busy.

    The steps of :func:`clean_text` then run on polars' in-memory engine, also for a large column. Spreading a
    column's morsels over every core only pays when a core is free; beside other work it is CPU spent on nothing. The
    OpenCart normalizer cleans its texts in worker threads beside its other parts: against the streaming engine for
    every column, normalize + validate gained 10% (10k products) and nothing (100k) with only the small columns in
    memory, 16% and 7% with every column in memory. The setting is per thread (a context variable).

    Yields:
        Nothing; the previous setting is restored on exit.

    """
    token = _BESIDE_OTHER_WORK.set(True)
    try:
        yield
    finally:
        _BESIDE_OTHER_WORK.reset(token)


def _run(s: pl.Series, expr: pl.Expr) -> pl.Series:
    """Evaluate ``expr`` (over column ``v``) on ``s``: in morsels on every core for a large column, else in memory.

    The streaming engine costs about 0.5 ms more per call, which a small column does not win back, nor a column
    rendered :func:`beside_other_work`.
    """
    streaming = not _BESIDE_OTHER_WORK.get() and (
        s.len() >= _STREAMING_MIN_ROWS or s.estimated_size() >= _STREAMING_MIN_BYTES
    )
    engine = "streaming" if streaming else "in-memory"
    return pl.LazyFrame({"v": s}).select(expr.alias(s.name)).collect(engine=engine).to_series()


def _any(s: pl.Series, pattern: str, *, literal: bool = False) -> bool:
    return s.len() > 0 and bool(s.str.contains(pattern, literal=literal).any())


def collapse_whitespace(expr: pl.Expr) -> pl.Expr:
    """Collapse every run of whitespace (Unicode spaces, nbsp, tabs, newlines) to one space and trim.

    Args:
        expr: A Utf8 expression.

    Returns:
        The expression with whitespace normalized; an empty or all-blank value becomes null.

    """
    # One reference to the collapsed text: an eager select has no common-subexpression elimination.
    return expr.str.replace_all(_WS_RUN, " ").str.strip_chars(" ").replace("", None)


def data_bytes(s: pl.Series) -> list[pl.Series] | None:
    """Return the UTF-8 data buffers of a String series as UInt8 series (one copy, into Arrow's layout).

    A buffer holds the bytes of every value, and may hold bytes of no value (outside a slice), so a byte absent
    from the buffers is in no value: column-wide checks can rule a regex search out at memory speed.

    Args:
        s: A String series.

    Returns:
        One UInt8 series per Arrow chunk (empty chunks left out), or None for another dtype or Arrow layout.

    """
    if s.dtype != pl.String:
        return None
    arrow = s.to_arrow()
    views: list[pl.Series] = []
    for chunk in arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]:
        if chunk.type not in (pa.large_string(), pa.string()):
            return None
        data = chunk.buffers()[2]
        if data is not None and data.size:
            views.append(pl.Series(_CapsuleArray(pa.Array.from_buffers(pa.uint8(), data.size, [None, data]))))
    return views


class _CapsuleArray:
    """A pyarrow array seen through the Arrow PyCapsule interface only.

    ``pl.Series`` builds a series from such an object over the C data interface. Handed the pyarrow array itself, it
    takes its pyarrow path, which imports ``pyarrow.compute`` first: 26 ms, paid by the first normalize of a process.
    """

    def __init__(self, array: pa.Array) -> None:
        self._array = array

    def __arrow_c_array__(self, requested_schema: object | None = None) -> tuple[object, object]:
        return self._array.__arrow_c_array__(requested_schema)


@dataclass(frozen=True)
class ByteProfile:
    """The UTF-8 bytes of a String series (:func:`data_bytes`) with each buffer's lowest and highest byte.

    Several byte questions about one column (:meth:`may_hold`) share its one copy and its min/max passes.
    """

    views: tuple[tuple[pl.Series, int, int], ...]

    @classmethod
    def of(cls, s: pl.Series) -> ByteProfile | None:
        """Profile ``s``; None for another dtype or Arrow layout (every question must then answer True)."""
        views = data_bytes(s)
        if views is None:
            return None
        ranged: list[tuple[pl.Series, int, int]] = []
        for view in views:
            low, high = view.min(), view.max()
            if not isinstance(low, int) or not isinstance(high, int):
                return None
            ranged.append((view, low, high))
        return cls(tuple(ranged))

    def may_hold(self, *, below: int, among: Iterable[int] = ()) -> bool:
        """Whether a value may hold a byte below ``below`` or one of ``among`` (see :func:`may_hold_bytes`)."""
        extra = sorted(set(among))
        for view, low, high in self.views:
            if low < below:
                return True
            # A byte above the column's highest is in no value; each other one costs a comparison pass (an
            # ``is_in`` hash probe per byte was about 5 times slower over 34 MB of descriptions).
            if any(bool((view == byte).any()) for byte in extra if low <= byte <= high):
                return True
        return False

    def may_hold_whitespace(self) -> bool:
        r"""Whether a value may hold a whitespace character (regex ``\s``: Unicode White_Space).

        False only when no buffer holds a space, a byte below it or a lead byte of a non-ASCII White_Space
        character.
        """
        return self.may_hold(below=0x21, among=_WS_LEAD_BYTES)


def may_hold_bytes(s: pl.Series, *, below: int, among: Iterable[int] = ()) -> bool:
    """Whether a value of a String series may hold a byte below ``below`` or one of ``among``.

    False only when the column's bytes (:func:`data_bytes`) show none; True also for another dtype or layout.

    Args:
        s: A series.
        below: Every byte value under this one counts.
        among: Further byte values that count.

    Returns:
        Whether a regex looking for such bytes could match.

    """
    profile = ByteProfile.of(s)
    return profile is None or profile.may_hold(below=below, among=among)


def collapse_whitespace_series(s: pl.Series) -> pl.Series:
    """Apply :func:`collapse_whitespace` to a series, skipping the regex search when it cannot match.

    URLs, codes and most short texts hold no whitespace run: one look at the bytes of the whole column then
    rules out the Unicode-aware search through every value (the costliest part of the rule). A column without any
    whitespace (URLs) is not even copied: only its empty values become null.

    Args:
        s: A Utf8 series (other dtypes are cast).

    Returns:
        The series with whitespace normalized; an empty or all-blank value becomes null.

    """
    if s.dtype != pl.String:
        s = s.cast(pl.String)
    v = pl.col("v")
    profile = ByteProfile.of(s)
    # Each byte is looked for once: with no control or non-ASCII space byte, whitespace can only be the space.
    if profile is None or profile.may_hold(below=0x20, among=_WS_LEAD_BYTES):
        expr = collapse_whitespace(v)
    elif not profile.may_hold(below=0x21):
        expr = pl.when(v.str.len_bytes() > 0).then(v)
    elif bool(s.str.contains("  ", literal=True).any()):
        expr = collapse_whitespace(v)
    else:
        expr = v.str.strip_chars(" ").replace("", None)
    return s.to_frame("v").select(expr.alias(s.name)).to_series()


def looks_double_encoded(expr: pl.Expr) -> pl.Expr:
    """Flag values that are HTML escaped once more (``&lt;p&gt;Hi&lt;/p&gt;``) and hold no real tag.

    Args:
        expr: A Utf8 expression.

    Returns:
        A Boolean expression (null stays null).

    """
    encoded = expr.str.contains(_ENCODED_TAG) | expr.str.contains(_ENCODED_ENTITY)
    return encoded & ~expr.str.contains(_REAL_TAG)


def strip_tags(expr: pl.Expr) -> pl.Expr:
    """Remove markup with regular expressions (the reference rules; :func:`html_to_text` gets the same result
    faster by replacing the markup it has already seen in one literal pass first).

    Comments and ``<script>``/``<style>`` elements are dropped with their content, block-level tags and
    ``<br>`` (:data:`BLOCK_TAGS`) become a space, every other tag is removed. Entities are left as they are.

    Args:
        expr: A Utf8 expression holding HTML.

    Returns:
        The expression with tags removed (whitespace not yet normalized).

    """  # noqa: D205
    return expr.str.replace_all(_DROPPED_ELEMENTS, "").str.replace_all(_BLOCK_TAG, " ").str.replace_all(_ANY_TAG, "")


def _entity_mapping(s: pl.Series) -> dict[str, str]:
    """Map every distinct entity token of ``s`` to its decoded text (only tokens that change)."""
    if not _any(s, "&", literal=True):
        return {}
    tokens = s.str.extract_all(_ENTITY_REF).explode().drop_nulls().unique().to_list()
    mapping = {tok: html.unescape(tok) for tok in tokens}
    return {tok: out for tok, out in mapping.items() if out != tok}


def _replace_literals(expr: pl.Expr, mapping: dict[str, str]) -> pl.Expr:
    """One leftmost-longest Aho-Corasick pass; replaced text is never scanned again."""
    if not mapping:
        return expr
    patterns = sorted(mapping, key=len, reverse=True)
    return expr.str.replace_many(patterns, [mapping[p] for p in patterns], leftmost=True)


def decode_entities(s: pl.Series) -> pl.Series:
    """Decode named (HTML5 table) and numeric (decimal or hex) character references.

    The distinct entity tokens of the column are collected, each is decoded once with :func:`html.unescape`
    (so legacy forms without ``;`` and invalid code points follow the HTML5 rules), and the mapping is applied
    to the whole column in one Aho-Corasick pass: the result equals ``html.unescape`` value by value.

    Args:
        s: A Utf8 series.

    Returns:
        The decoded series (same length and name, nulls kept).

    """
    mapping = _entity_mapping(s)
    if not mapping:
        return s
    return _run(s, _replace_literals(pl.col("v"), mapping))


def decode_if_double_encoded(s: pl.Series, *, double_encoded: bool | None = None) -> pl.Series:
    """Undo one level of HTML escaping on double-encoded values.

    Args:
        s: A Utf8 series.
        double_encoded: ``True`` when the source is known to store escaped HTML (OpenCart), ``False`` when it
            never does, ``None`` to decide per value with :func:`looks_double_encoded`.

    Returns:
        The series with the outer escaping removed where it applied.

    """
    if double_encoded is False or s.len() == 0:
        return s
    if double_encoded:
        return decode_entities(s)
    mask = s.to_frame("v").select(looks_double_encoded(pl.col("v")).fill_null(False)).to_series()
    if not bool(mask.any()):
        return s
    idx = mask.arg_true()
    return s.clone().scatter(idx, decode_entities(s.gather(idx)))


def _shortcode_expr(expr: pl.Expr, closed_names: Iterable[str]) -> pl.Expr:
    for pattern in (_SC_ATTR_TAG, _SC_SELF_CLOSING, _SC_FAMILY, _SC_KNOWN):
        expr = expr.str.replace_all(pattern, " ")
    names = sorted(set(closed_names))
    if names:
        expr = expr.str.replace_all(_named_shortcodes_pattern(names), " ")
    return expr.str.replace_all(r"\[/" + _SC_NAME + r"\]", " ")


def _closed_shortcode_names(s: pl.Series) -> list[str]:
    if not _any(s, "[/", literal=True):
        return []
    closers = s.str.extract_all(_SC_CLOSING).explode().drop_nulls().unique().to_list()
    return [c[2:-1] for c in closers]


def _strip_shortcode_rows(s: pl.Series, closed_names: Iterable[str]) -> pl.Series:
    """Apply :func:`_shortcode_expr` to the values that hold a ``[`` (no other value has a shortcode).

    Returns a new series; ``s`` is left as it is (``scatter`` works in place).
    """
    rows = s.str.contains("[", literal=True).arg_true()
    return s.clone().scatter(rows, _run(s.gather(rows), _shortcode_expr(pl.col("v"), closed_names)))


def strip_shortcodes(s: pl.Series) -> pl.Series:
    """Remove WordPress-style shortcodes, keeping the text they wrap.

    Removed: closing tags ``[/name]``; opening tags with attributes ``[caption id="x"]``; self-closing
    ``[name /]``; every tag of a known name (:data:`KNOWN_SHORTCODES`) or page-builder family (``vc_``,
    ``et_pb_``, ...); bare ``[name]`` when ``[/name]`` appears in the same column. A bare ``[Note]`` with no
    attributes and no closing tag is ordinary text and is kept; so are markdown links ``[t](u)``.

    Args:
        s: A Utf8 series.

    Returns:
        The series with each shortcode replaced by a space (whitespace not yet normalized).

    """
    if not _any(s, "[", literal=True):
        return s
    return _run(s, _shortcode_expr(pl.col("v"), _closed_shortcode_names(s)))


def _markdown_expr(expr: pl.Expr) -> pl.Expr:
    for pattern, replacement in _MD_RULES:
        expr = expr.str.replace_all(pattern, replacement)
    return expr


def markdown_to_text(s: pl.Series) -> pl.Series:
    """Remove markdown syntax: headings, emphasis, links ``[t](u)`` -> t, images -> alt text, code ticks and
    fences, list markers, blockquotes, tables, reference definitions and backslash escapes.

    HTML embedded in markdown is left for :func:`html_to_text`; whitespace is not normalized here.

    Args:
        s: A Utf8 series holding markdown.

    Returns:
        The series with markdown syntax removed.

    """  # noqa: D205
    if s.len() == 0:
        return s
    return _run(s, _markdown_expr(pl.col("v")))


def _node_type(node: dict[str, Any]) -> str:
    for key in ("type", "nodeType", "_type"):
        value = node.get(key)
        if isinstance(value, str):
            return value.lower()
    return ""


def _render_node(node: Any, parts: list[str]) -> None:
    if isinstance(node, str):
        parts.append(node)
        return
    if isinstance(node, list):
        for child in node:
            _render_node(child, parts)
        return
    if not isinstance(node, dict):
        return
    node_type = _node_type(node)
    block = node_type not in _INLINE_NODE_TYPES and "hyperlink" not in node_type
    if block:
        parts.append(" ")
    for key in ("text", "value"):
        value = node.get(key)
        if isinstance(value, str):
            parts.append(value)
    data = node.get("data")
    if isinstance(data, dict) and isinstance(data.get("text"), str):  # Editor.js blocks
        parts.append(data["text"])
    if isinstance(data, dict) and isinstance(data.get("items"), list):  # Editor.js lists
        _render_node(data["items"], parts)
    for key in _CHILD_KEYS:
        children = node.get(key)
        if isinstance(children, list | dict):
            _render_node(children, parts)
    if block:
        parts.append(" ")


def _has_rich_text_keys(node: Any, depth: int = 0) -> bool:
    if depth > 4:
        return False
    if isinstance(node, dict):
        return bool(_RICH_TEXT_KEYS & node.keys()) or any(_has_rich_text_keys(v, depth + 1) for v in node.values())
    if isinstance(node, list):
        return any(_has_rich_text_keys(v, depth + 1) for v in node)
    return False


def render_rich_text(value: str) -> str | None:
    """Render one rich-text JSON document to text.

    Understands node trees whose nodes carry ``text``/``value`` strings and ``children``/``content`` lists
    (Shopify rich text, Contentful, Strapi blocks, Sanity Portable Text, Editor.js ``blocks``). Inline nodes
    (text, span, link, ...) are concatenated; other nodes are separated by a space.

    Args:
        value: A string that may hold JSON.

    Returns:
        The rendered text (may still hold inline HTML), ``""`` for an empty rich-text document, or None when
        the value is not JSON or not a rich-text tree (the caller then keeps the original).

    """
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if not isinstance(parsed, dict | list) or not _has_rich_text_keys(parsed):
        return None
    parts: list[str] = []
    _render_node(parsed, parts)
    return "".join(parts).strip()


def rich_text_to_text(s: pl.Series) -> pl.Series:
    """Render the values of ``s`` that are rich-text JSON; leave every other value untouched.

    Only values starting with ``{`` or ``[`` (after leading whitespace) are parsed, in Python.

    Args:
        s: A Utf8 series.

    Returns:
        The series with rich-text JSON values replaced by their text.

    """
    if not _any(s, r"^\s*[\[{]"):
        return s
    mask = s.str.contains(r"^\s*[\[{]").fill_null(False)
    idx = mask.arg_true().to_list()
    rendered = [render_rich_text(v) for v in s.gather(idx).to_list()]
    keep = [i for i, r in zip(idx, rendered, strict=True) if r is not None]
    if not keep:
        return s
    return s.clone().scatter(keep, pl.Series([r for r in rendered if r is not None], dtype=pl.Utf8))


def _spread_sample(s: pl.Series, rows: int = _MARKUP_SAMPLE_ROWS) -> pl.Series:
    """About ``rows`` values spread over ``s`` (all of ``s`` when it is shorter than twice that).

    Every n-th value, with n prime to 2, 3, 5 and 7: rows often come in a fixed order (a product's languages one
    after the other), and a step that is a multiple of that period would sample one language only.
    """
    step = s.len() // rows
    if step < 2:
        return s
    while math.gcd(step, _SMALL_PERIODS) != 1:
        step += 1
    return s.gather_every(step)


def _markup_mapping(s: pl.Series, *, encoded: bool) -> dict[str, str]:
    r"""Map the markup runs seen in a spread sample of ``s`` to what the reference rules make of them.

    A run is markup plus the whitespace after it (``</p>\r\n<p>\r\n\t``); it becomes ``" "`` when the rules
    leave any whitespace (a block tag, a ``<br>``, a line break) and ``""`` otherwise (``<strong>``). Runs
    holding ``<script``/``<style`` are left to the regex fallback, which drops the element's content. With
    ``encoded`` the runs are taken in their escaped form (``&lt;p&gt;``) and judged once unescaped; a run that
    is not well-formed markup once unescaped is left to the fallback too.
    """
    sample = _spread_sample(s)
    runs = sample.str.extract_all(_ENCODED_MARKUP_RUN if encoded else _MARKUP_RUN).explode().drop_nulls()
    if runs.len() == 0:
        return {}
    runs = runs.value_counts(sort=True).to_series().head(_MARKUP_MAX_PATTERNS)
    markup = pl.Series([html.unescape(r) for r in runs.to_list()], dtype=pl.Utf8) if encoded else runs
    spaced = markup.to_frame("v").select(
        strip_tags(pl.col("v")).str.contains(r"\s").alias("spaced"),
        (pl.col("v").str.contains(_DROP_ELEMENT_TAG) | ~pl.col("v").str.contains(_WHOLE_MARKUP_RUN)).alias("drop"),
    )
    return {
        run: " " if sp else ""
        for run, sp, drop in zip(runs.to_list(), spaced["spaced"].to_list(), spaced["drop"].to_list(), strict=True)
        if not drop
    }


def _park(text: str) -> str:
    return text.replace("<", _LT_PLACEHOLDER).replace(">", _GT_PLACEHOLDER)


def _entity_literals(found: dict[str, Any], *, encoded: bool) -> dict[str, str]:
    """Entity tokens found by :func:`_html_scan` and their final text; a decoded ``<``/``>`` is parked.

    With ``encoded``, ``&amp;rsquo;`` (an entity escaped once more) decodes twice, while the outer escaping
    (``&lt;``, ``&quot;``) decodes once to real characters, which are markup again. The outer escaping is
    almost always the five tokens an escaping function writes; other named tokens are only looked for in the
    values that hold one.

    Tokens taken from a sample (not ``complete``) are kept only when they end in ``;``: ``&not`` would otherwise
    decode the start of an ``&notin;`` the sample did not hold, where no ``&`` is left to show the miss
    (:func:`_missed_entities`).
    """
    if not found["amp"]:
        return {}
    if not encoded:
        literals = {tok: _park(html.unescape(tok)) for tok in found["entities"]}
    else:
        literals = dict(_ESCAPES)
        literals.update({tok: html.unescape(tok) for tok in found["numeric"]})
        literals.update({tok: html.unescape(tok) for tok in found["odd"]})
        literals.update({tok: _park(html.unescape(html.unescape(tok))) for tok in found["escaped"]})
    return {tok: out for tok, out in literals.items() if out != tok and (found["complete"] or tok.endswith(";"))}


def _tokens(expr: pl.Expr, pattern: str) -> pl.Expr:
    """Distinct matches of ``pattern`` in a column, as one list value (a reduction for :func:`_html_scan`)."""
    return expr.str.extract_all(pattern).explode().drop_nulls().unique().implode()


def _html_scan(s: pl.Series, *, encoded: bool, sampled: bool = True) -> dict[str, Any]:
    """Look at ``s`` for everything :func:`_html_text` needs to know.

    The flags (is there markup, markup whose content is dropped: comments, scripts, styles, any ``&``) hold for
    the whole column: in a column longer than two samples, a spread sample is looked at first, and a flag it
    already shows (one value is enough for ``any``) is not searched for in the whole column. The distinct entity
    tokens (with ``encoded``: numeric references, named tokens of the values holding a nonstandard one, and
    entities escaped once more) come from that sample when ``sampled``, which ``complete`` then says is not the
    whole column: extracting every token of every value cost more than the literal pass that decodes them.
    The reductions of one select are independent, so polars evaluates them in parallel.
    """
    v = pl.col("v")
    flags: dict[str, pl.Expr] = {"amp": v.str.contains("&", literal=True).any()}
    if encoded:
        flags |= {
            "markup": v.str.contains(r"<|&lt;").any(),
            "dropped": v.str.contains_any(
                _DROPPED_OPENERS + _ENCODED_DROPPED_OPENERS, ascii_case_insensitive=True
            ).any(),
        }
        escaped_rows = v.str.contains_any(_ESCAPED_AMPERSANDS, ascii_case_insensitive=True)
        tokens = {
            "numeric": _tokens(v.filter(v.str.contains("&#", literal=True)), _NUMERIC_REF),
            "odd": _tokens(v.filter(v.str.contains(_NONSTANDARD_NAMED_ENTITY)), _ENTITY_REF),
            "escaped": _tokens(v.filter(escaped_rows), _ESCAPED_REF),
        }
    else:
        flags |= {
            "markup": v.str.contains("<", literal=True).any(),
            "dropped": v.str.contains_any(_DROPPED_OPENERS, ascii_case_insensitive=True).any(),
        }
        tokens = {"entities": _tokens(v, _ENTITY_REF)}
    sample = _spread_sample(s)
    sampling = sampled and sample.len() < s.len()
    seen: dict[str, Any] = {}
    if sample.len() < s.len():
        seen = sample.to_frame("v").select(**flags, **(tokens if sampling else {})).row(0, named=True)
    settled = {name: True for name in flags if seen.get(name)}
    scans = {name: expr for name, expr in flags.items() if name not in settled}
    if not sampling:
        scans |= tokens
    found = {**(s.to_frame("v").select(**scans).row(0, named=True) if scans else {}), **settled}
    if sampling:
        found |= {name: seen[name] for name in tokens}
    return {**found, "complete": not sampling}


def _missed_entities(literal: pl.Series) -> bool:
    """Whether the literal pass (on sampled tokens) may have left an entity the column's full token set decodes.

    Every token a pass misses starts with an ``&`` that is still there after it: a token the sample did not hold
    is left as it is, and an entity escaped once more (``&amp;hellip;`` in escaped HTML) loses only its
    ``&amp;``. So the pass missed nothing when its output holds no ``&`` starting a reference that
    :func:`html.unescape` changes. Decoded text can hold one too (``&amp;hellip;`` in plain HTML), which then
    costs the full scan, never a wrong text.
    """
    suspects = literal.filter(literal.str.contains(r"&(?:#[0-9xX]|[A-Za-z])").fill_null(value=False))
    if suspects.is_empty():
        return False
    refs = suspects.to_frame("v").select(_tokens(pl.col("v"), _ENTITY_REF)).item().to_list()
    return any(html.unescape(ref) != ref for ref in refs)


def _html_text(s: pl.Series, text: pl.Series, expr: pl.Expr, *, encoded: bool) -> pl.Series:
    """Render ``text`` (``s`` with its shortcodes stripped) with ``expr`` (over ``v``) and then the HTML rules.

    One Aho-Corasick pass replaces the markup runs of :func:`_markup_mapping` and every entity at once
    (decoded ``<``/``>`` parked on noncharacters); the regex rules of :func:`strip_tags` then only
    meet the markup the sample did not hold; whitespace is collapsed last. With ``encoded`` (every value escaped
    once more) the outer escaping is undone in the same literal pass. When the entity tokens come from a sample,
    the output of the literal pass is checked (:func:`_missed_entities`) and, if the sample missed one, made
    again with every token of the column.
    """
    found = _html_scan(s, encoded=encoded)
    markup = _markup_mapping(s, encoded=encoded) if found["markup"] else {}
    entities = _entity_literals(found, encoded=encoded)
    if _parking_unsafe(text, entities):
        return _html_text_by_rules(text, expr, encoded=encoded)
    literal = _replace_literals(expr, {**markup, **entities})
    if found["complete"] or not found["amp"]:
        return _run(text, _finish(_markup_rules(literal, found), entities))
    passed = _run(text, literal)
    if _missed_entities(passed):
        found = _html_scan(s, encoded=encoded, sampled=False)
        entities = _entity_literals(found, encoded=encoded)
        if _parking_unsafe(text, entities):
            return _html_text_by_rules(text, expr, encoded=encoded)
        passed = _run(text, _replace_literals(expr, {**markup, **entities}))
    if found["markup"]:
        # Every regex markup rule starts at a ``<``: after the literal pass only a few values still hold one.
        rows = passed.str.contains("<", literal=True).fill_null(value=False).arg_true()
        if rows.len():
            passed = passed.scatter(rows, _run(passed.gather(rows), _markup_rules(pl.col("v"), found)))
    return _run(passed, _finish(pl.col("v"), entities))


def _markup_rules(expr: pl.Expr, found: dict[str, Any]) -> pl.Expr:
    """Apply the regex markup rules of :func:`strip_tags` that ``found`` says the values need."""
    if found["markup"]:
        if found["dropped"]:
            expr = expr.str.replace_all(_DROPPED_ELEMENTS, "")
        expr = expr.str.replace_all(_BLOCK_TAG, " ").str.replace_all(_ANY_TAG, "")
    return expr


def _parks(entities: dict[str, str]) -> bool:
    """Whether an entity's text holds a parked ``<``/``>`` (which :func:`_finish` then puts back)."""
    return any(_LT_PLACEHOLDER in out or _GT_PLACEHOLDER in out for out in entities.values())


def _parking_unsafe(text: pl.Series, entities: dict[str, str]) -> bool:
    """Whether parking would change ``text``: ``entities`` park a ``<``/``>`` and a value holds a placeholder itself."""
    return _parks(entities) and _any(text, _PLACEHOLDER_PATTERN)


def _html_text_by_rules(text: pl.Series, expr: pl.Expr, *, encoded: bool) -> pl.Series:
    """Render ``text`` with ``expr``, then (undo the outer escaping,) strip the tags, decode, collapse whitespace.

    The regex rules alone, for a column that holds a placeholder noncharacter itself (parking would turn it into
    ``<``/``>``); elsewhere the literal pass of :func:`_html_text` gives the same text as these rules, only faster.
    """
    once = decode_if_double_encoded(_run(text, expr), double_encoded=encoded)
    stripped = _run(once, strip_tags(pl.col("v")))
    return _run(decode_entities(stripped), collapse_whitespace(pl.col("v")))


def _finish(expr: pl.Expr, entities: dict[str, str]) -> pl.Expr:
    """Put the parked ``<``/``>`` back and collapse whitespace."""
    if _parks(entities):
        expr = expr.str.replace_many([_LT_PLACEHOLDER, _GT_PLACEHOLDER], ["<", ">"])
    return collapse_whitespace(expr)


def _double_encoded_mask(s: pl.Series) -> pl.Series:
    return s.to_frame("v").select(looks_double_encoded(pl.col("v")).fill_null(False)).to_series()


def _render(s: pl.Series, *, markdown: bool, shortcodes: bool, double_encoded: bool | None) -> pl.Series:
    """Render ``s`` to text, splitting it into escaped and plain values when ``double_encoded`` is None."""
    if s.dtype != pl.Utf8:
        s = s.cast(pl.Utf8)
    if s.len() == 0:
        return s
    if double_encoded is None:
        mask = _double_encoded_mask(s)
        flagged = int(mask.sum())
        if 0 < flagged < s.len() - s.null_count():
            idx_enc, idx_plain = mask.arg_true(), (~mask).arg_true()
            enc = _render(s.gather(idx_enc), markdown=markdown, shortcodes=shortcodes, double_encoded=True)
            plain = _render(s.gather(idx_plain), markdown=markdown, shortcodes=shortcodes, double_encoded=False)
            return s.clone().scatter(idx_enc, enc).scatter(idx_plain, plain)
        double_encoded = flagged > 0
    encoded = double_encoded
    if encoded and markdown:  # markdown syntax (``>`` quotes) is only visible once unescaped
        s, encoded = decode_entities(s), False
    text = s
    if shortcodes and _any(s, "[", literal=True):
        text = _strip_shortcode_rows(s, _closed_shortcode_names(s))
    expr = _markdown_expr(pl.col("v")) if markdown else pl.col("v")
    return _html_text(s, text, expr, encoded=encoded)


def html_to_text(s: pl.Series, *, double_encoded: bool | None = None) -> pl.Series:
    """Render HTML to plain text: undo double encoding, strip tags, decode entities, normalize whitespace.

    The result equals :func:`decode_if_double_encoded`, then :func:`strip_tags`, :func:`decode_entities` and
    :func:`collapse_whitespace`; it is computed faster by replacing the markup runs already seen in a sample
    of the column and every entity in one literal (Aho-Corasick) pass, leaving the regex rules only the
    markup the sample did not hold.

    Args:
        s: A Utf8 series holding HTML (or plain text).
        double_encoded: See :func:`decode_if_double_encoded`.

    Returns:
        Plain text, whitespace collapsed and trimmed, empty -> null.

    """
    return _render(s, markdown=False, shortcodes=False, double_encoded=double_encoded)


def clean_text(s: pl.Series, *, markdown: bool = False, double_encoded: bool | None = None) -> pl.Series:
    """Render catalog text (HTML, shortcodes, markdown, rich-text JSON) to normalized plain text.

    Whether a value is markdown cannot be told reliably from the value (``*`` and ``_`` are common in plain
    text), so the source says it: pass ``markdown=True`` for markdown fields (Strapi, Sanity, headless CMSs).
    HTML inside markdown is stripped as well.

    Args:
        s: A Utf8 series (title, description, ...). Non-string series are cast to Utf8.
        markdown: Treat values as markdown.
        double_encoded: ``True`` for sources that store HTML escaped once more (OpenCart ``description``),
            ``False`` to never undo escaping, ``None`` (default) to detect it per value.

    Returns:
        A Utf8 series of the same length and name: plain text, whitespace collapsed, empty -> null.

    """
    if s.dtype != pl.Utf8:
        s = s.cast(pl.Utf8)
    if _repetitive(s):
        # Attribute values, tags, option names: each distinct value is rendered once and the results are put back in
        # place. What the rendering learns from a column (its entity tokens, its closed shortcodes) is the same for
        # the column's distinct values, so every value gets the same text either way.
        distinct = s.unique()
        rendered = pl.DataFrame(
            {"v": distinct, "t": clean_text(distinct, markdown=markdown, double_encoded=double_encoded)}
        )
        out = s.to_frame("v").join(rendered, on="v", how="left", maintain_order="left", nulls_equal=True)
        return out.get_column("t").alias(s.name)
    return _render(rich_text_to_text(s), markdown=markdown, shortcodes=True, double_encoded=double_encoded)


def _repetitive(s: pl.Series) -> bool:
    """Whether at most half of a spread sample of ``s`` is distinct values (only for columns worth the check)."""
    if s.len() < _DISTINCT_MIN_ROWS:
        return False
    sample = _spread_sample(s, _DISTINCT_SAMPLE_ROWS)
    return sample.n_unique() * 2 <= sample.len()
