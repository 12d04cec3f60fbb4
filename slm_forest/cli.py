"""`slm`: the command-line interface. Each command loads the config, calls one function, prints a summary.

Heavy libraries (torch, transformers, trl) are imported inside the stage functions, never here, so `slm --help`
starts fast. One error boundary in `main()` turns SlmError into `error: … — hint` and exit code 1 (anything else:
exit 2); SLM_DEBUG=1 shows the traceback instead. Both, and everything else the process prints or logs, are
scrubbed of secrets (slm_forest.redact).
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from slm_forest import redact
from slm_forest.cli_help import SlmCommand
from slm_forest.config import config_to_yaml, load_config
from slm_forest.errors import SlmError
from slm_forest.pipeline import STAGE_ORDER, STAGES, StageReport, run_stage, stage_enabled, stage_range
from slm_forest.progress import console
from slm_forest.redact import scrub

app = typer.Typer(
    name="slm",
    help="SLM Forest: Korean tax law → Q&A dataset → fine-tuned small language model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Check or print a run config.", no_args_is_help=True)
app.add_typer(config_app, name="config")
data_app = typer.Typer(help="Inspect built datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")

ConfigArg = Annotated[
    Path, typer.Argument(metavar="CONFIG", help="the run's YAML config, e.g. configs/smoke.yaml", show_default=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="override a config key: --set train.lora.r=16 (repeatable)",
        show_default=False,
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="redo the stage even if its manifest says it is done")]

out = console  # progress and summaries go to stderr; machine-readable output (config show, --json) to stdout


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in counts.items())


def _print_report(report: StageReport) -> None:
    if report.dry_run:
        out.print(f"[bold]{report.name} --dry-run[/bold]: nothing was sent or written; {_format_counts(report.counts)}")
        return
    if report.skipped:
        out.print(f"[dim]{report.name}: skipped (finished earlier with the same config and inputs)[/dim]")
        return
    status = "done" if report.complete else "[yellow]stopped early (rerun to resume)[/yellow]"
    extra = f" — {report.summary}" if report.summary else ""
    out.print(
        f"[bold green]{report.name}[/bold green]: {status} in {report.seconds:.1f}s; {_format_counts(report.counts)}{extra}"
    )


def _run_one(name: str, config: Path, overrides: list[str] | None, force: bool, **options: object) -> None:
    cfg = load_config(config, overrides)
    report = run_stage(cfg, name, force=force, options=options)
    _print_report(report)
    if not report.complete and not report.dry_run:
        raise typer.Exit(3)


@app.command(cls=SlmCommand, help=STAGES["collect"].summary)
def collect(config: ConfigArg, set_: SetOpt = None, force: ForceOpt = False) -> None:
    _run_one("collect", config, set_, force)


@app.command(cls=SlmCommand, help=STAGES["prepare"].summary)
def prepare(config: ConfigArg, set_: SetOpt = None, force: ForceOpt = False) -> None:
    _run_one("prepare", config, set_, force)


@app.command(
    cls=SlmCommand, help=STAGES["index"].summary[:-1] + "; with --query, search it and print the top k with citations."
)
def index(
    config: ConfigArg,
    set_: SetOpt = None,
    force: ForceOpt = False,
    query: Annotated[str | None, typer.Option("--query", "-q", help="a question to search for")] = None,
    k: Annotated[int | None, typer.Option("--k", min=1, help="hits to print (default: index.k)")] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="the law in force on YYYY-MM-DD (default: today)")
    ] = None,
    law: Annotated[str | None, typer.Option("--law", help="the law that '법 제55조' in the query means")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the hits as JSON")] = False,
) -> None:
    _run_one("index", config, set_, force)
    if query is not None:
        from slm_datagen.index.show import search_command  # noqa: PLC0415 - numpy and bm25s only when searching

        search_command(load_config(config, set_), query, k, as_of, law, as_json)


@app.command(cls=SlmCommand, help=STAGES["distill"].summary)
def distill(
    config: ConfigArg,
    set_: SetOpt = None,
    force: ForceOpt = False,
    limit: Annotated[int | None, typer.Option(metavar="N", help="trial run on the first N chunks")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print requests, tokens and dollars; call nothing")
    ] = False,
    retry_failures: Annotated[
        bool,
        typer.Option(
            "--retry-failures",
            help="ask again the requests whose answers failed the checks (not Korean, off-schema); they are paid "
            "again. Transient failures (429, 5xx, timeouts) are retried by any rerun",
        ),
    ] = False,
) -> None:
    # Content failures are final in a finished stage: asking again means running it even when it is finished.
    _run_one(
        "distill", config, set_, force or retry_failures, limit=limit, dry_run=dry_run, retry_failures=retry_failures
    )


@app.command(cls=SlmCommand, help=STAGES["build"].summary)
def build(config: ConfigArg, set_: SetOpt = None, force: ForceOpt = False) -> None:
    _run_one("build", config, set_, force)


@app.command(cls=SlmCommand, help=STAGES["train"].summary)
def train(
    config: ConfigArg,
    set_: SetOpt = None,
    force: ForceOpt = False,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the last checkpoint")] = False,
) -> None:
    _run_one("train", config, set_, force, resume=resume)


@app.command(cls=SlmCommand, help=STAGES["reinforce"].summary)
def reinforce(
    config: ConfigArg,
    set_: SetOpt = None,
    force: ForceOpt = False,
    resume: Annotated[bool, typer.Option("--resume", help="continue from the last checkpoint")] = False,
) -> None:
    _run_one("reinforce", config, set_, force, resume=resume)


@app.command(cls=SlmCommand, help=STAGES["evaluate"].summary)
def evaluate(config: ConfigArg, set_: SetOpt = None, force: ForceOpt = False) -> None:
    _run_one("evaluate", config, set_, force)


@app.command(cls=SlmCommand, help=STAGES["export"].summary)
def export(config: ConfigArg, set_: SetOpt = None, force: ForceOpt = False) -> None:
    _run_one("export", config, set_, force)


@app.command(cls=SlmCommand, help="Run several stages in order (all by default); finished stages are skipped.")
def run(
    config: ConfigArg,
    set_: SetOpt = None,
    from_: Annotated[
        str | None, typer.Option("--from", metavar="STAGE", help=f"first stage ({', '.join(STAGE_ORDER)})")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", metavar="STAGE", help="last stage")] = None,
    force: ForceOpt = False,
) -> None:
    cfg = load_config(config, set_)
    stages = [name for name in stage_range(from_, to) if stage_enabled(cfg, name)]
    out.print(f"[bold]slm run[/bold] {config} → {cfg.run_dir()} ({' → '.join(stages)})")
    reports: list[StageReport] = []
    for name in stages:
        report = run_stage(cfg, name, force=force)
        _print_report(report)
        reports.append(report)
        if not report.complete:
            break
    table = Table(title=f"run '{cfg.run_name}'")
    for column in ("stage", "items", "seconds", "status"):
        table.add_column(column)
    for report in reports:
        status = "skipped" if report.skipped else ("done" if report.complete else "stopped early")
        table.add_row(report.name, _format_counts(report.counts), f"{report.seconds:.1f}", status)
    out.print(table)
    if reports and not reports[-1].complete:
        raise typer.Exit(3)


@config_app.command(
    "validate",
    cls=SlmCommand,
    short_help="Check a config offline: unknown keys, bad values, the base model, the variables it needs.",
    help="Validate a config without a GPU or network: unknown keys and bad values with their line, the base model, "
    "dtype rules, and the key variables the run will need (warnings).",
)
def config_validate(config: ConfigArg, set_: SetOpt = None) -> None:
    from slm_forest.validate import check_config, where  # noqa: PLC0415 - imports the (torch-free) model registry

    cfg = load_config(config, set_)
    findings = check_config(cfg)
    for finding in findings:
        style = "bold red" if finding.level == "error" else "yellow"
        line = f"{where(finding.key, cfg, set_ or [])}: {finding.message} — {finding.hint}"
        out.print(f"[{style}]{finding.level}:[/{style}] {escape(line)}", highlight=False, soft_wrap=True)
    errors = sum(f.level == "error" for f in findings)
    if errors:
        raise typer.Exit(1)
    warned = f", {len(findings)} warning(s)" if findings else ""
    out.print(f"[green]{config}: valid[/green]{warned} (run '{cfg.run_name}' → {cfg.run_dir()})", soft_wrap=True)


@config_app.command("show", cls=SlmCommand, help="Print the config with every default filled in.")
def config_show(config: ConfigArg, set_: SetOpt = None) -> None:
    cfg = load_config(config, set_)
    sys.stdout.write(config_to_yaml(cfg))


def _register_tool_commands() -> None:
    """Commands that live beside their stage. Their modules import no heavy library at import time."""
    from fine_tuning.plan.cli import plan
    from fine_tuning.serve import ask_cli
    from slm_datagen.dataset.stats_cli import data_stats
    from slm_datagen.review.cli import review

    data_app.command("stats", cls=SlmCommand)(data_stats)
    app.command("plan", cls=SlmCommand)(plan)
    app.command("ask", cls=SlmCommand)(ask_cli.ask)
    app.command("chat", cls=SlmCommand)(ask_cli.chat)
    app.command("serve", cls=SlmCommand)(ask_cli.serve)
    app.command(
        "review", cls=SlmCommand, short_help="Review the pairs build held back (or any pair): approve, reject, edit."
    )(review)


_register_tool_commands()


def _fail(exc: BaseException, line: str, code: int, debug: bool) -> None:
    """The one place an error leaves the process: one scrubbed line, or (SLM_DEBUG=1) the scrubbed traceback."""
    if debug:
        sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
    else:
        out.print(f"[bold red]error:[/bold red] {escape(scrub(line))}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    # Before anything prints or logs: stdout, stderr and every log record are scrubbed of secrets from here on.
    redact.install()
    debug = os.environ.get("SLM_DEBUG", "") not in ("", "0")
    try:
        # Standalone mode: Typer/Click print usage errors themselves (exit 2) and exit with the command's code.
        app()
    except SlmError as exc:
        _fail(exc, str(exc), 1, debug)  # one line: what and where, then the fix
    except Exception as exc:  # noqa: BLE001 - the one boundary that keeps tracebacks away from users
        detail = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line, always
        _fail(exc, f"unexpected {type(exc).__name__}: {detail} — rerun with SLM_DEBUG=1 for the traceback", 2, debug)


if __name__ == "__main__":
    main()
