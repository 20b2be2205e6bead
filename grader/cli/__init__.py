"""The `grader` command. Each sub-command lives in its own module and registers itself here.

Heavy imports (torch, sentence-transformers, openai) happen inside the commands, so
`grader --help` and input errors stay fast.
"""

from __future__ import annotations

import sys

import typer

from grader.errors import GraderError

app = typer.Typer(
    name="grader",
    help="Grade free-text answers against reference answers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    from grader.cli import bank, batch, bench, evaluate, grade, rubric, serve, tune

    for module in (bank, rubric, grade, batch, evaluate, tune, serve, bench):
        module.register(app)


_register()


def main() -> None:
    try:
        # In non-standalone mode click returns (not raises) the code of a `typer.Exit`.
        code = app(standalone_mode=False)
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
