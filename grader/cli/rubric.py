"""`grader rubric list | build | show | validate | schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from grader.cli.bank import BuilderOpt
from grader.cli.common import BaseUrlOpt, ConfigOpt, JsonOpt, ModelOpt, RubricsOpt


def register(app: typer.Typer) -> None:
    rubric_app = typer.Typer(help="Rubrics: list, build, show and validate weighted key points.", no_args_is_help=True)
    app.add_typer(rubric_app, name="rubric")

    @rubric_app.command("build")
    def build(
        ids: Annotated[list[str] | None, typer.Argument(metavar="ID", help="Question ids (id or bank/id); default: all.")] = None,
        rubrics: RubricsOpt = None,
        builder: BuilderOpt = "auto",
        force: Annotated[
            bool, typer.Option("--force", help="Also replace key points a person wrote or edited.")
        ] = False,
        config: ConfigOpt = None,
        base_url: BaseUrlOpt = None,
        model: ModelOpt = None,
    ) -> None:
        """Rebuild key points from each rubric's reference answer, keeping hand-edited ones."""
        from grader.cli.common import build_settings
        from grader.errors import InputError
        from grader.rubric.build import check_builder_choice, rebuild_rubric
        from grader.rubric.store import find_rubric_path, load_rubric, rewrite_rubric, rubric_files

        check_builder_choice(builder)
        settings = build_settings(config=config, base_url=base_url, model=model, rubrics=rubrics)
        folder = settings.rubrics_dir
        paths = [find_rubric_path(folder, i) for i in ids] if ids else rubric_files(folder)
        failures = 0
        for p in paths:
            try:
                rubric = load_rubric(p)
            except InputError as e:
                typer.echo(f"error: {e}", err=True)
                failures += 1
                continue
            outcome = rebuild_rubric(rubric, builder, settings.judge, force)
            for note in outcome.notes:
                typer.echo(f"warning: {note}", err=True)
            for c in outcome.kept:
                how = "written by hand" if c.origin == "human" else "edited by hand"
                typer.echo(f"{rubric.id}: kept {c.id} ({how}); --force replaces it")
            written, backup = rewrite_rubric(outcome.rubric, p)
            if not written:
                typer.echo(f"{rubric.id}: unchanged ({len(outcome.rubric.criteria)} key points) {p}")
                continue
            if backup is not None:
                typer.echo(f"{rubric.id}: the file had comments, which a rebuild cannot keep: old file kept as {backup}")
            typer.echo(f"{rubric.id}: {len(outcome.rubric.criteria)} key points ({outcome.rubric.builder}) -> {p}")
        if failures:
            raise InputError(f"{failures} rubric file(s) could not be rebuilt (see above)")

    @rubric_app.command("list")
    def list_(
        bank: Annotated[str | None, typer.Option("--bank", help="Only this bank's questions.")] = None,
        rubrics: RubricsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """List the questions you can grade: id, max score, number of key points and the question."""
        from grader.cli.common import build_settings
        from grader.pipeline.grader import Grader
        from grader.rubric.listing import list_rubrics, render_listing

        # The folder `grade` reads (the shipped rubrics when run outside a checkout); building a Grader is cheap.
        listing = list_rubrics(Grader(build_settings(rubrics=rubrics)).rubrics_dir, bank)
        for problem in listing.problems:
            typer.echo(f"error: {problem}", err=True)
        if as_json:
            typer.echo(json.dumps([e.model_dump() for e in listing.entries], indent=2, ensure_ascii=False))
        else:
            typer.echo(render_listing(listing.entries))
        if listing.problems:
            from grader.errors import InputError

            raise InputError(f"{len(listing.problems)} rubric file(s) could not be read (see above)")

    @rubric_app.command("show")
    def show(
        question_id: Annotated[str, typer.Argument(metavar="ID", help="Question id (id or bank/id).")],
        rubrics: RubricsOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Print a rubric: question, reference answer and key points with weights."""
        from grader.cli.common import build_settings
        from grader.pipeline.grader import Grader
        from grader.rubric.store import find_rubric_path, load_rubric

        path = find_rubric_path(Grader(build_settings(rubrics=rubrics)).rubrics_dir, question_id)
        rubric = load_rubric(path)
        if as_json:
            typer.echo(rubric.model_dump_json(indent=2))
            return
        from grader.rubric.render import print_rubric

        print_rubric(rubric, path)

    @rubric_app.command("validate")
    def validate(
        path: Annotated[
            Path | None, typer.Argument(help="A rubric file or folder (default: the rubric folder, rubrics/).")
        ] = None,
        rubrics: RubricsOpt = None,
    ) -> None:
        """Check rubric files; print each problem as file:line: field: message (exit 2 if any)."""
        from grader.cli.common import build_settings
        from grader.rubric.validate import validate_path

        target = path if path is not None else build_settings(rubrics=rubrics).rubrics_dir
        ok, problems = validate_path(target)
        for p in problems:
            typer.echo(f"error: {p}", err=True)
        if problems:
            from grader.errors import InputError

            raise InputError(f"{len(problems)} problem(s) in rubric files; {len(ok)} rubric(s) OK")
        typer.echo(f"{len(ok)} rubrics OK")

    @rubric_app.command("schema")
    def schema(
        output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")] = None,
    ) -> None:
        """Print the JSON Schema of rubric files (generated from the models)."""
        from grader.rubric.schema import rubric_json_schema_text

        text = rubric_json_schema_text()
        if output is None:
            typer.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")
            typer.echo(f"wrote {output}")
