"""The `grader` command. Each sub-command lives in its own module and registers itself here.

Heavy imports (torch, sentence-transformers, openai) happen inside the commands, so
`grader --help` and input errors stay fast.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable

import typer

from grader.cli.help import GraderGroup
from grader.errors import GraderError

_app = typer.Typer(
    name="grader",
    help="Grade free-text answers against reference answers.",
    cls=GraderGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help, wrapped to the terminal (up to 120 columns); see grader/cli/help.py.
    rich_markup_mode=None,
    context_settings={"max_content_width": 120, "help_option_names": ["-h", "--help"]},
)


@_app.callback()
def _root() -> None:
    # A callback keeps `grader` a command group even when only one sub-command is registered.
    pass


# Command name -> the module that registers it, in the order `grader --help` lists them.
_MODULES = ("bank", "rubric", "grade", "batch", "evaluate", "tune", "serve", "model", "bench")
_COMMANDS = {"bank": "bank", "rubric": "rubric", "grade": "grade", "batch": "batch", "eval": "evaluate",
             "tune": "tune", "serve-local": "serve", "model": "model", "bench": "bench"}
_registered: set[str] = set()


def _register(modules: Iterable[str] = _MODULES) -> None:
    for name in modules:
        if name not in _registered:
            importlib.import_module(f"grader.cli.{name}").register(_app)
            _registered.add(name)


def _register_for(argv: list[str]) -> None:
    """Register only the sub-command being run: importing every command module (batch, eval, bench ...)
    costs a cold `grader grade` time for nothing. Help, unknown commands and no command get them all."""
    command = next((a for a in argv if not a.startswith("-")), None)
    wants_help = command is None or any(a in ("--help", "-h") for a in argv[: argv.index(command)])
    if command in _COMMANDS and not wants_help:
        _register([_COMMANDS[command]])
    else:
        _register()


def __getattr__(name: str) -> object:
    # `from grader.cli import app` (tests, embedding) gets the app with every command.
    if name == "app":
        _register()
        return _app
    raise AttributeError(f"module 'grader.cli' has no attribute {name!r}")


def main() -> None:
    _register_for(sys.argv[1:])
    try:
        # In non-standalone mode click returns (not raises) the code of a `typer.Exit`.
        code = _app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except GraderError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # click usage errors carry their own exit code (2)
        import click

        # typer >= 0.17 vendors click as typer._click: its exceptions are not click's.
        from typer._click import exceptions as typer_click

        if isinstance(e, click.ClickException | typer_click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Exit | typer.Exit):
            sys.exit(e.exit_code)
        raise
