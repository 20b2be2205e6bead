"""`grader model prepare`: convert the embedding model for the ONNX runtimes ahead of time.

Grading converts on first use anyway (once, into the cache); preparing moves that minute out of the
first grade, e.g. into an image build or a setup script.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    model_app = typer.Typer(help="The embedding model: prepare its ONNX runtimes.", no_args_is_help=True)
    app.add_typer(model_app, name="model")

    @model_app.command("prepare")
    def prepare(
        runtime: Annotated[
            list[str] | None,
            typer.Option("--runtime", help="onnx-int8 and/or onnx (repeatable; default: both)."),
        ] = None,
        model: Annotated[
            str | None, typer.Option("--model", help="Model folder (default: the bundled all-MiniLM-L6-v2).")
        ] = None,
        cache: Annotated[
            Path | None, typer.Option("--cache", help="Cache folder (default: $XDG_CACHE_HOME/grader/models).")
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Convert again even if the cache has it.")] = False,
    ) -> None:
        """Convert the model to ONNX (float32 and int8) into the cache folder; prints where each went."""
        from grader.embedding.encoder import bundled_model_path
        from grader.embedding.light_model import Unsupported
        from grader.embedding.onnx_runtime import ONNX_RUNTIMES
        from grader.errors import InputError

        location = str(bundled_model_path()) if model is None else str(Path(model).expanduser().resolve())
        for rt in runtime or ():
            if rt not in ONNX_RUNTIMES:
                raise typer.BadParameter(f"--runtime must be {' or '.join(ONNX_RUNTIMES)}, not {rt!r}")
        from grader.embedding.runtime import prepare_onnx

        for rt in runtime or ONNX_RUNTIMES:
            t0 = time.perf_counter()
            try:
                folder, converted = prepare_onnx(location, rt, cache, force)
            except Unsupported as e:
                raise InputError(f"cannot run on {rt}: {e}", field="embedding.model") from e
            typer.echo(json.dumps({"runtime": rt, "folder": str(folder), "converted": converted,
                                   "seconds": round(time.perf_counter() - t0, 1)}))
