"""`slm index CONFIG --query "…"`: search the run's index and print the hits with their citation and 시행일."""

from __future__ import annotations

import sys

from rich.markup import escape

from slm_datagen.index.search import SearchResult, load_run_index, search
from slm_forest.config import RunConfig

_PREVIEW_CHARS = 160


def search_command(
    cfg: RunConfig, query: str, k: int | None, as_of: str | None, law: str | None, as_json: bool
) -> SearchResult:
    index = load_run_index(cfg)
    try:
        result = search(index, query, k=k, as_of=as_of, law=law)
    finally:
        index.close()
    if as_json:
        sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    else:
        print_result(result)
    return result


def print_result(result: SearchResult) -> None:
    from slm_forest.progress import console  # noqa: PLC0415

    out = console.__class__(file=sys.stdout, soft_wrap=True, highlight=False)  # results to stdout, like --json
    out.print(f"[bold]{escape(result.query)}[/bold] — law in force on {result.as_of}")
    if result.missing:
        out.print(f"[yellow]cited but not in the index:[/yellow] {escape(', '.join(result.missing))}")
    if not result.hits:
        out.print("no chunk shares a term with the query")
    for hit in result.hits:
        when = f"시행 {hit.effective_date}" if hit.effective_date else hit.kind
        if hit.in_force is False:
            when += f" (not yet in force on {result.as_of})"
        found = f"cited as {hit.cited_as}" if hit.cited_as else f"bm25 {hit.score:.2f}"
        preview = " ".join(hit.text.split())[:_PREVIEW_CHARS]
        out.print(f"{hit.rank}. [bold]{escape(hit.citation)}[/bold]  {escape(when)}  [dim]{escape(found)}[/dim]")
        out.print(f"   {escape(hit.title)}", style="cyan")
        out.print(f"   {escape(preview)}{'…' if len(hit.text) > _PREVIEW_CHARS else ''}")
