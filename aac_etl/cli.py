"""`aac-etl`: demo, syncs, backfills, status, search and quarantine from the terminal.

Every sync and load runs as a Dagster run in the local instance ($DAGSTER_HOME), so it appears in the UI's run
history next to scheduled and sensor-launched runs. Quick commands (status, search, quarantine list) import neither
Dagster's asset code nor Great Expectations.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from aac_etl import settings

if TYPE_CHECKING:
    import dagster as dg

    from aac_etl.lib.buffer import BufferStore
    from aac_etl.lib.sources_config import SourceConfig

app = typer.Typer(help="aac_etl: catalog-to-search pipeline on Dagster.", no_args_is_help=True, add_completion=False)
quarantine_app = typer.Typer(help="Inspect and retry quarantined records.", no_args_is_help=True)
typesense_app = typer.Typer(help="The embedded local Typesense server.", no_args_is_help=True)
contract_app = typer.Typer(help="The SyncProductInput data contract and its derived forms.", no_args_is_help=True)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(typesense_app, name="typesense")
app.add_typer(contract_app, name="contract")

console = Console(stderr=True)
out = Console()

DEMO_SOURCE_NAME = "demo_shop"
DEFAULT_DAGSTER_YAML = "telemetry:\n  enabled: false\n"


# ----------------------------------------------------------------------------------------------- environment


def prepare_environment() -> Path:
    """Make the state folder and a Dagster home (with dagster.yaml) ready; return the state folder."""
    state = settings.state_dir()
    os.environ[settings.ENV_HOME] = str(state)
    if not os.environ.get("DAGSTER_HOME"):
        home = state / "dagster"
        home.mkdir(parents=True, exist_ok=True)
        os.environ["DAGSTER_HOME"] = str(home)
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        project_yaml = Path.cwd() / "dagster.yaml"
        if project_yaml.exists() and project_yaml.resolve() != target.resolve():
            shutil.copyfile(project_yaml, target)
        else:
            target.write_text(DEFAULT_DAGSTER_YAML, encoding="utf-8")
    demo_db = state / "demo_shop.sqlite"
    if not os.environ.get(settings.ENV_DEMO_DSN) and demo_db.exists():
        os.environ[settings.ENV_DEMO_DSN] = f"sqlite:///{demo_db}"
    return state


def _sources(names: list[str] | None = None) -> list[SourceConfig]:
    from aac_etl.lib.sources_config import load_sources, sources_file_path

    path = sources_file_path()
    if not path.exists():
        console.print(f"[red]No sources file at {path}[/] (set {settings.ENV_SOURCES_FILE} or create sources.yaml).")
        raise typer.Exit(2)
    declared = load_sources(path)
    if not names:
        return declared
    by_name = {s.name: s for s in declared}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        console.print(f"[red]Unknown source(s): {', '.join(unknown)}.[/] Declared: {', '.join(by_name) or 'none'}.")
        raise typer.Exit(2)
    return [by_name[n] for n in names]


def _store() -> BufferStore:
    from aac_etl.lib.buffer import BufferStore

    url = os.environ.get(settings.ENV_BUFFER_URL) or f"duckdb:///{settings.state_dir() / 'buffer.duckdb'}"
    store = BufferStore(url)
    store.ensure_schema()
    return store


def _typesense_client() -> Any:
    from aac_etl.lib.typesense_client import TypesenseClient
    from aac_etl.lib.typesense_server import typesense_connection

    url, key = typesense_connection()
    return TypesenseClient(url, key)


# ----------------------------------------------------------------------------------------------- running jobs


def run_job(defs: dg.Definitions, job_name: str, run_config: dict[str, Any], title: str) -> dg.ExecuteInProcessResult:
    """Run a job in this process against the persistent instance, with a progress bar over its steps.

    Args:
        defs: The code location's definitions.
        job_name: Job to run.
        run_config: Its run config.
        title: What the progress bar says.

    Returns:
        The Dagster result (success or failure; the run is in the instance either way).

    """
    import dagster as dg
    from dagster._core.utils import make_new_run_id

    instance = dg.DagsterInstance.get()
    job = defs.resolve_job_def(job_name)
    # The run's events go to the instance (and the UI); the terminal shows only warnings and the progress bar.
    run_config = {**run_config, "loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    run_id = make_new_run_id()
    holder: dict[str, Any] = {}

    def target() -> None:
        try:
            holder["result"] = job.execute_in_process(
                run_config=run_config,
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
                tags={"aac_etl/via": "cli"},
            )
        except BaseException as exc:  # surfaced in the main thread
            holder["error"] = exc

    steps_total = len(job.graph.node_dict)
    thread = threading.Thread(target=target, daemon=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(title, total=steps_total)
        thread.start()
        while thread.is_alive():
            thread.join(0.25)
            done, current = _step_progress(instance, run_id)
            progress.update(task, completed=done, description=f"{title} [dim]{current}[/]")
        done, _ = _step_progress(instance, run_id)
        progress.update(task, completed=done, description=title)
    if "error" in holder:
        raise holder["error"]
    result: dg.ExecuteInProcessResult = holder["result"]
    return result


def _step_progress(instance: dg.DagsterInstance, run_id: str) -> tuple[int, str]:
    import dagster as dg

    try:
        records = instance.get_records_for_run(
            run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
        ).records
    except Exception:  # the run may not be stored yet
        return 0, ""
    done = 0
    current = ""
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_SUCCESS:
            done += 1
        else:
            current = event.step_key or ""
    return done, current


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    from aac_etl.lib.redact import redact

    lines: list[str] = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data and event.step_failure_data.error:
            err = event.step_failure_data.error
            lines.append(f"{event.step_key}: {err.message.strip()}")
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            evaluation = getattr(data, "passed", True)
            if not evaluation and getattr(data, "description", None):
                lines.append(f"check {data.check_name}: {data.description}")  # type: ignore[union-attr]
    return redact("\n".join(lines) or "run failed (see the Dagster UI)")


def sync_sources(
    sources: list[SourceConfig],
    *,
    full: bool,
    load: bool,
    reindex: bool = False,
    allow_drop: bool = False,
    replay_run_id: str | None = None,
) -> bool:
    """Sync sources one after the other, then load their aliases; return True when every run succeeded."""
    from aac_etl.defs.catalog.assets import sync_job_name, sync_run_config
    from aac_etl.defs.location import build_definitions
    from aac_etl.defs.runs import materialization_metadata

    defs = build_definitions(_sources())
    ok = True
    aliases: list[str] = []
    for source in sources:
        mode = "full" if full else "delta"
        config = sync_run_config(
            source.name, mode, replay_run_id=replay_run_id, allow_drop=allow_drop, reindex=reindex and full
        )
        result = run_job(defs, sync_job_name(source.name), config, f"sync {source.name} ({mode})")
        if result.success:
            meta = materialization_metadata(result, source.name, "search_buffer")
            console.print(
                f"[green]✓[/] {source.name}: {meta.get('documents', 0)} documents, "
                f"{meta.get('enqueued_upserts', 0)} to upsert, {meta.get('enqueued_deletes', 0)} to delete, "
                f"{meta.get('unchanged', 0)} unchanged  [dim](run {result.run_id})[/]"
            )
            built = materialization_metadata(result, "typesense", source.collection_alias)
            if built:
                console.print(
                    f"[green]✓[/] {source.collection_alias}: new collection {built.get('collection')} built during "
                    f"the sync ({built.get('reason')}), {built.get('documents_in_collection', 0)} documents "
                    "searchable"
                )
            if source.collection_alias not in aliases:
                aliases.append(source.collection_alias)
        else:
            ok = False
            console.print(f"[red]✗ {source.name} failed[/] [dim](run {result.run_id})[/]\n{_failure_text(result)}")
    if load:
        for alias in aliases:
            # A full sync builds the new collection itself; a delta sync leaves the reindex to the load.
            ok = load_alias_now(defs, alias, reindex=reindex and not full) and ok
    return ok


def load_alias_now(defs: dg.Definitions, alias: str, *, reindex: bool = False) -> bool:
    """Run the load job of an alias now (what the sensor would launch)."""
    from aac_etl.defs.runs import materialization_metadata
    from aac_etl.defs.search.assets import load_job_name

    config = {"ops": {f"typesense__{alias}": {"config": {"reindex": reindex}}}}
    result = run_job(defs, load_job_name(alias), config, f"load {alias}{' (reindex)' if reindex else ''}")
    if not result.success:
        console.print(f"[red]✗ load {alias} failed[/] [dim](run {result.run_id})[/]\n{_failure_text(result)}")
        return False
    meta = materialization_metadata(result, "typesense", alias)
    console.print(
        f"[green]✓[/] {alias}: sent {meta.get('documents_sent', 0)}, deleted {meta.get('deleted', 0)}, "
        f"failed {meta.get('failed', 0)}; {meta.get('documents_in_collection', 0)} documents searchable "
        f"[dim](run {result.run_id})[/]"
    )
    return True


# ----------------------------------------------------------------------------------------------- commands


@app.command()
def demo(
    dsn: Annotated[
        str | None, typer.Option(help="Sync an existing OpenCart database instead of the generated shop.")
    ] = None,
    products: Annotated[int, typer.Option(help="Products in the generated demo shop.")] = 300,
    fresh: Annotated[bool, typer.Option(help="Regenerate the demo shop even if it exists.")] = False,
) -> None:
    """Build a demo shop (or use --dsn), sync it end to end and make it searchable."""
    state = prepare_environment()
    if dsn:
        os.environ[settings.ENV_DEMO_DSN] = dsn
    else:
        from aac_etl.demo.generator import generate_shop

        db = state / "demo_shop.sqlite"
        if fresh or not db.exists():
            db.unlink(missing_ok=True)
            with console.status(f"Generating a demo shop with {products} products…"):
                stats = generate_shop(f"sqlite:///{db}", products=products)
            console.print(f"[green]✓[/] demo shop: {stats}")
        os.environ[settings.ENV_DEMO_DSN] = f"sqlite:///{db}"
    if not os.environ.get(settings.ENV_TYPESENSE_URL):
        from aac_etl.lib.typesense_server import ensure_local_server

        with console.status("Starting the local Typesense server…"):
            server = ensure_local_server()
        console.print(f"[green]✓[/] local Typesense at {server.url}")
    sources = [s for s in _sources() if s.name == DEMO_SOURCE_NAME]
    if not sources:
        console.print(f"[red]The sources file declares no {DEMO_SOURCE_NAME!r} source.[/]")
        raise typer.Exit(2)
    ok = sync_sources(sources, full=True, load=True)
    _print_status(sources, as_json=False)
    if ok:
        _print_search(sources[0].collection_alias, "*", limit=5, as_json=False)
        console.print("Next: [bold]aac-etl search QUERY[/], [bold]aac-etl status[/], [bold]aac-etl ui[/]")
    raise typer.Exit(0 if ok else 1)


@app.command()
def sync(  # noqa: PLR0917 (typer maps parameters to options)
    source: Annotated[list[str], typer.Option("--source", "-s", help="Source name (repeatable).")],
    full: Annotated[
        bool, typer.Option("--full", help="Full sync (also deletes documents gone from the source).")
    ] = False,
    load: Annotated[
        bool, typer.Option(help="Load the buffer into Typesense right away (else the sensor does).")
    ] = True,
    reindex: Annotated[bool, typer.Option(help="Rebuild the collection and swap the alias.")] = False,
    allow_drop: Annotated[bool, typer.Option(help="Let a full sync delete more than the safety gate allows.")] = False,
    replay: Annotated[str | None, typer.Option(help="Replay the extract kept by this earlier run id.")] = None,
) -> None:
    """Run an ad-hoc sync of one or more sources (a delta unless --full)."""
    prepare_environment()
    ok = sync_sources(
        _sources(source), full=full, load=load, reindex=reindex, allow_drop=allow_drop, replay_run_id=replay
    )
    raise typer.Exit(0 if ok else 1)


@app.command()
def backfill(
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Source name (repeatable).")] = None,
    all_sources: Annotated[bool, typer.Option("--all", help="Every declared source.")] = False,
    reindex: Annotated[bool, typer.Option(help="Rebuild each collection and swap its alias.")] = False,
) -> None:
    """Full syncs of the chosen sources, then load (optionally rebuilding the collections)."""
    prepare_environment()
    if not source and not all_sources:
        console.print("[red]Name sources with --source, or pass --all.[/]")
        raise typer.Exit(2)
    chosen = _sources(None if all_sources else source)
    ok = sync_sources(chosen, full=True, load=True, reindex=reindex)
    raise typer.Exit(0 if ok else 1)


@app.command()
def load(
    alias: Annotated[
        list[str] | None, typer.Option(help="Alias to load (default: every alias with pending rows).")
    ] = None,
    reindex: Annotated[bool, typer.Option(help="Rebuild the collection and swap the alias.")] = False,
) -> None:
    """Load pending buffer rows into Typesense now (what the sensor launches)."""
    prepare_environment()
    from aac_etl.defs.location import build_definitions

    defs = build_definitions(_sources())
    targets = alias or [p.alias for p in _store().pending_summary() if p.pending_count]
    if reindex and not alias:
        targets = sorted({s.collection_alias for s in _sources()})
    ok = True
    for name in targets:
        ok = load_alias_now(defs, name, reindex=reindex) and ok
    if not targets:
        console.print("Nothing pending.")
    raise typer.Exit(0 if ok else 1)


def source_status(source: SourceConfig, store: BufferStore, client: Any | None) -> dict[str, Any]:
    """Status of one source in the Searchanise-style state model users know.

    ``status``: none (nothing imported yet), update (operations wait in the buffer), updating (a full import is
    being built), normal (indexed, nothing pending), error (the last sync failed or documents were rejected).
    """
    alias = source.collection_alias
    counts = store.status(alias)
    pending = int(counts.filter(counts["status"] == "pending")["count"].sum())
    failed = int(counts.filter(counts["status"] == "failed")["count"].sum())
    index_state = store.get_index_state(alias)
    full_import = index_state.full_import if index_state else None
    last = store.last_sync(source.name)
    quarantine = store.quarantine_counts(source.name)
    product_count: int | None = None
    error: str | None = None
    if client is not None:
        try:
            product_count = client.count(alias) if client.get_alias(alias) else 0
        except Exception as exc:
            from aac_etl.lib.redact import redact

            error = redact(f"Typesense unreachable: {exc}")
    if last is not None and last.status == "failed":
        status = "error"
        error = error or last.error
    elif failed or error:
        status = "error"
    elif full_import == "start":
        status = "updating"
    elif pending:
        status = "update"
    elif not product_count and index_state is None:
        status = "none"
    else:
        status = "normal"
    return {
        "source": source.name,
        "collection_alias": alias,
        "status": status,
        "full_import": full_import,
        "product_count": product_count,
        "pending": pending,
        "failed": failed,
        "quarantined": int(quarantine["count"].sum()) if quarantine.height else 0,
        "last_sync": _jsonable(dataclasses.asdict(last)) if last is not None else None,
        "error": error,
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _last_sync_text(last: dict[str, Any]) -> str:
    when = str(last.get("finished_at") or last.get("started_at") or "")[:19]
    return f"{last.get('kind', '-')} {last.get('status', '')} {when}"


def _print_status(sources: list[SourceConfig], *, as_json: bool) -> None:
    store = _store()
    try:
        client = _typesense_client()
    except Exception as exc:
        from aac_etl.lib.redact import redact

        console.print(f"[yellow]Typesense not available: {redact(str(exc))}[/]")
        client = None
    rows = [source_status(s, store, client) for s in sources]
    if as_json:
        out.print_json(json.dumps({"sources": rows}))
        return
    table = Table(title="aac_etl status")
    for col in (
        "source",
        "alias",
        "status",
        "full_import",
        "product_count",
        "pending",
        "failed",
        "quarantined",
        "last sync",
    ):
        table.add_column(col)
    for row in rows:
        last = row["last_sync"] or {}
        table.add_row(
            row["source"],
            row["collection_alias"],
            row["status"],
            str(row["full_import"] or "-"),
            str(row["product_count"] if row["product_count"] is not None else "-"),
            str(row["pending"]),
            str(row["failed"]),
            str(row["quarantined"]),
            _last_sync_text(last),
        )
    out.print(table)


@app.command()
def status(
    source: Annotated[list[str] | None, typer.Option("--source", "-s", help="Source name (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Per source: status, full_import, product_count, pending and quarantined counts, last sync."""
    prepare_environment()
    _print_status(_sources(source), as_json=as_json)


def _print_search(alias: str, query: str, *, limit: int, as_json: bool, locale: str | None = None) -> None:
    client = _typesense_client()
    result = client.search(alias, query, per_page=limit, filter_by=f"locale:={locale}" if locale else None)
    hits = [h["document"] for h in result.get("hits", [])]
    if as_json:
        out.print_json(json.dumps({"found": result.get("found", 0), "hits": hits}))
        return
    table = Table(title=f"{result.get('found', 0)} hits for {query!r} in {alias}")
    for col in ("external_id", "title", "price", "sale", "availability", "description"):
        table.add_column(col, overflow="fold")
    for doc in hits:
        desc = str(doc.get("description") or "")
        table.add_row(
            str(doc.get("id")),
            str(doc.get("title")),
            f"{doc.get('price', '')} {doc.get('currency', '')}",
            str(doc.get("sale_price", "")),
            str(doc.get("availability", "")),
            desc[:90] + ("…" if len(desc) > 90 else ""),
        )
    out.print(table)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="Search text ('*' for everything).")],
    source: Annotated[str | None, typer.Option("--source", "-s", help="Source whose alias to search.")] = None,
    locale: Annotated[str | None, typer.Option(help="Only documents of this locale.")] = None,
    limit: Annotated[int, typer.Option(help="Hits to show.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Top hits for QUERY from a source's alias (default: the first declared source)."""
    prepare_environment()
    chosen = _sources([source] if source else None)
    if not chosen:
        console.print("[red]No sources declared.[/]")
        raise typer.Exit(2)
    _print_search(chosen[0].collection_alias, query, limit=limit, as_json=as_json, locale=locale)


@quarantine_app.command("list")
def quarantine_list(
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Quarantined records with field, rule and value."""
    prepare_environment()
    frame = _store().list_quarantine(source=source, limit=limit)
    if as_json:
        out.print_json(json.dumps(_jsonable({"records": frame.to_dicts()}), default=str))
        return
    table = Table(title=f"quarantine ({frame.height} shown)")
    for col in ("source", "external_id", "field", "rule", "value", "message"):
        table.add_column(col, overflow="fold")
    for row in frame.iter_rows(named=True):
        table.add_row(*(str(row.get(c) or "") for c in ("source", "external_id", "field", "rule", "value", "message")))
    out.print(table)


@quarantine_app.command("show")
def quarantine_show(
    external_id: Annotated[str, typer.Argument(help="The quarantined record's external_id.")],
    source: Annotated[str | None, typer.Option("--source", "-s")] = None,
) -> None:
    """Every broken rule of one quarantined record."""
    prepare_environment()
    frame = _store().list_quarantine(source=source, limit=100_000)
    rows = frame.filter(frame["external_id"] == external_id)
    if rows.height == 0:
        console.print(f"{external_id!r} is not in quarantine.")
        raise typer.Exit(1)
    for row in rows.iter_rows(named=True):
        out.print(f"[bold]{row['field']}[/] ({row['rule']}): {row['message']}\n  value: {row['value']!r}")


@quarantine_app.command("retry")
def quarantine_retry(
    source: Annotated[list[str] | None, typer.Option("--source", "-s")] = None,
) -> None:
    """Re-validate quarantined records by running a full sync of their sources (fixed records leave quarantine)."""
    prepare_environment()
    store = _store()
    chosen = [s for s in _sources(source) if store.quarantine_counts(s.name).height]
    if not chosen:
        console.print("Nothing in quarantine.")
        raise typer.Exit(0)
    ok = sync_sources(chosen, full=True, load=True)
    for s in chosen:
        left = store.quarantine_counts(s.name)
        console.print(f"{s.name}: {int(left['count'].sum()) if left.height else 0} quarantine rows left")
    raise typer.Exit(0 if ok else 1)


@typesense_app.command("start")
def typesense_start() -> None:
    """Start (or reuse) the embedded local Typesense server."""
    prepare_environment()
    from aac_etl.lib.typesense_server import ensure_local_server

    server = ensure_local_server()
    out.print(f"local Typesense at {server.url} (pid {server.pid})")


@typesense_app.command("stop")
def typesense_stop() -> None:
    """Stop the embedded local Typesense server."""
    prepare_environment()
    from aac_etl.lib.typesense_server import stop_local_server

    out.print("stopped" if stop_local_server() else "not running")


@contract_app.command("table")
def contract_table(
    readme: Annotated[Path | None, typer.Option(help="Rewrite the field table between the README's markers.")] = None,
) -> None:
    """Print the contract's field table as markdown (or write it into README.md with --readme README.md)."""
    from aac_etl.lib.contract import field_table_markdown, load_contract, render_readme_table

    if readme is None:
        out.print(field_table_markdown(load_contract()), markup=False, highlight=False)
        return
    changed = render_readme_table(readme)
    console.print(f"{readme}: {'updated' if changed else 'already up to date'}")


@contract_app.command("schema")
def contract_schema(
    alias: Annotated[str, typer.Option(help="Collection name to put in the schema.")] = "products",
) -> None:
    """Print the Typesense collection schema derived from the contract."""
    from aac_etl.lib.contract import load_contract, typesense_schema

    out.print_json(json.dumps(typesense_schema(load_contract(), alias)))


@app.command()
def ui(port: Annotated[int, typer.Option(help="Dagster webserver port.")] = 3000) -> None:
    """Open the Dagster UI (`dagster dev` with workspace.yaml, the sensor and schedules running)."""
    prepare_environment()
    dagster = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))
    os.execv(dagster, [dagster, "dev", "-w", "workspace.yaml", "-p", str(port)])  # noqa: S606


def main() -> None:
    """Console entry point."""
    app()


if __name__ == "__main__":
    main()
