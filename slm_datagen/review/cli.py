"""`slm review CONFIG`: the review page for a built run, on 127.0.0.1 unless --host says otherwise.

Light at import time (typer only): FastAPI, uvicorn and the run's files load when the command runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from slm_forest.errors import SlmError


def review(
    config: Annotated[Path, typer.Argument(help="the run's YAML config", show_default=False)],
    port: Annotated[int, typer.Option("--port", help="port on 127.0.0.1 (0: any free port)")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="interface to listen on; anything but 127.0.0.1 needs --api-key-env")
    ] = "127.0.0.1",
    api_key_env: Annotated[
        str | None,
        typer.Option("--api-key-env", help="require `Authorization: Bearer $VAR` on the API", show_default=False),
    ] = None,
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", help="name recorded with each decision (default: the OS user)")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a config key (as for the stages)", show_default=False)
    ] = None,
) -> None:
    """Review the pairs build held back (or any pair): approve, reject, edit; `slm build` then follows the decisions."""
    from slm_datagen.review.app import make_app
    from slm_datagen.review.decisions import default_reviewer
    from slm_datagen.review.state import load_state
    from slm_forest.config import load_config
    from slm_forest.local_server import LOCAL_HOSTS, LocalServer
    from slm_forest.progress import console
    from slm_forest.redact import register_secret_envs

    api_key = None
    if api_key_env:
        register_secret_envs([api_key_env])
        api_key = os.environ.get(api_key_env, "").strip()
        if not api_key:
            raise SlmError(
                f"--api-key-env {api_key_env}: that environment variable is not set",
                f"export {api_key_env}=<a long random string>",
            )
    if host not in LOCAL_HOSTS and not api_key:
        raise SlmError(
            f"--host {host}: the review page would be open to the network without a key",
            "add --api-key-env NAME (every request must then send the key), or drop --host",
        )
    cfg = load_config(config, set_)
    state = load_state(cfg, reviewer or default_reviewer())
    server = LocalServer(make_app(state, api_key), host, port)
    progress = state.progress()
    console.print(
        f"[bold green]slm review[/bold green]: {server.url}/ (run '{cfg.run_name}', reviewer '{state.reviewer}'; "
        f"{progress['waiting']} waiting, {progress['reviewed']} reviewed; decisions in {state.log_path})",
        soft_wrap=True,
    )
    if state.tear:
        console.print(f"[yellow]review: {state.tear}[/yellow]", soft_wrap=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        console.print("review: stopped (every decision is on disk)")
