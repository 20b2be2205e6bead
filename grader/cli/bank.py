"""`grader bank import`: a question bank file becomes one rubric file per question."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grader.cli.common import BaseUrlOpt, ConfigOpt, ModelOpt

BuilderOpt = Annotated[
    str,
    typer.Option(
        "--builder",
        help="deterministic | llm | auto (llm when a judge endpoint is configured, else deterministic).",
    ),
]


def register(app: typer.Typer) -> None:
    bank_app = typer.Typer(help="Question banks: import questions and reference answers.", no_args_is_help=True)
    app.add_typer(bank_app, name="bank")

    @bank_app.command("import")
    def import_(
        path: Annotated[Path, typer.Argument(metavar="INPUT", help="Bank file: .md (seed format), .json, .jsonl, .yaml or .csv.")],
        bank: Annotated[str | None, typer.Option("--bank", help="Bank name (default: the file name).")] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Rubric folder (default: rubrics/).")] = None,
        builder: BuilderOpt = "auto",
        force: Annotated[bool, typer.Option("--force", help="Replace rubric files that already exist.")] = False,
        fmt: Annotated[
            str | None, typer.Option("--format", help="markdown | json | jsonl | yaml | csv (default: by extension).")
        ] = None,
        id_col: Annotated[str, typer.Option("--id-col", help="Column/key holding the question id.")] = "id",
        question_col: Annotated[str, typer.Option("--question-col", help="Column/key holding the question.")] = "question",
        reference_col: Annotated[
            str, typer.Option("--reference-col", help="Column/key holding the reference answer.")
        ] = "reference_answer",
        difficulty_col: Annotated[str, typer.Option("--difficulty-col")] = "difficulty",
        topic_col: Annotated[str, typer.Option("--topic-col")] = "topic",
        max_score_col: Annotated[str, typer.Option("--max-score-col")] = "max_score",
        config: ConfigOpt = None,
        base_url: BaseUrlOpt = None,
        model: ModelOpt = None,
    ) -> None:
        """Import a bank: write rubrics/<bank>/<id>.yaml for each question, with key points built."""
        from grader.bank.loader import load_bank
        from grader.bank.tabular import ColumnMap
        from grader.cli.common import build_settings
        from grader.rubric.build import check_builder_choice, new_rubric
        from grader.rubric.store import rubric_path, write_rubric

        check_builder_choice(builder)
        settings = build_settings(config=config, base_url=base_url, model=model)
        columns = ColumnMap(id_col, question_col, reference_col, difficulty_col, topic_col, max_score_col)
        loaded = load_bank(path, bank, columns, fmt)
        out_dir = out if out is not None else settings.rubrics_dir

        written, kept, builders = 0, 0, set()
        for question in loaded.questions:
            target = rubric_path(out_dir, question)
            if target.exists() and not force:
                typer.echo(f"kept {target}: it already exists (--force replaces it)", err=True)
                kept += 1
                continue
            rubric, notes = new_rubric(question, builder, settings.judge)
            for note in notes:
                typer.echo(f"warning: {note}", err=True)
            write_rubric(rubric, target)
            builders.add(rubric.builder or "")
            written += 1
        for problem in loaded.problems:
            typer.echo(f"error: {problem}", err=True)

        summary = f"imported {written} question(s) from {path} into {out_dir / loaded.name}/"
        if builders:
            summary += f" (builder: {', '.join(sorted(builders))})"
        if kept:
            summary += f"; kept {kept} existing file(s)"
        typer.echo(summary)
        if loaded.problems:
            from grader.errors import InputError

            # Raised (not typer.Exit) so grader.cli.main prints it and exits 2 like every input error.
            raise InputError(f"{len(loaded.problems)} question(s) could not be imported (see above)")
