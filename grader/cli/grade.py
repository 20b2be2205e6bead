"""`grader grade`: grade one answer, printed for people (rich) or as JSON (--json).

Exit codes: 0 graded (also when the judge failed and the flagged offline fallback stands in),
2 usage or input error, 3 judge failure without fallback (--no-fallback) so there is no score.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from grader.cli.common import (
    BaseUrlOpt,
    ConfigOpt,
    JsonOpt,
    JudgeOpt,
    ModelOpt,
    NoCacheOpt,
    PromptOpt,
    ProviderOpt,
    RubricsOpt,
    SamplesOpt,
    apply_pass_mark,
    build_settings,
)
from grader.cli.display import plain_math, shorten
from grader.errors import InputError, JudgeUnavailable, read_utf8
from grader.pipeline.grader import DEFAULT_MAX_ANSWER_CHARS
from grader.textio import DEFAULT_MAX_BYTES, TextProblem, check_text

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

    from grader.models import GradeResult, Rubric
    from grader.pipeline.grader import Grader

MaxCharsOpt = Annotated[
    int,
    typer.Option("--max-answer-chars", min=0, help="Longer answers are refused as input errors (0: no limit)."),
]
NoFallbackOpt = Annotated[
    bool,
    typer.Option("--no-fallback", help="If the judge fails, give no score (exit 3) instead of the offline score."),
]
PassMarkOpt = Annotated[
    float | None,
    typer.Option("--pass-mark", min=0, help="Flag grades near this score for review (see --pass-margin)."),
]
PassMarginOpt = Annotated[
    float | None, typer.Option("--pass-margin", min=0, help="How near the pass mark counts (default 0.5 points)."),
]

_MARKS = {
    "met": ("✓", "green"),
    "partial": ("~", "yellow"),
    "missed": ("✗", "red"),
    "contradicted": ("!", "bold magenta"),
}


def _answer_bytes_cap(max_chars: int) -> int:
    # UTF-8 takes at most 4 bytes a character; with no character limit, still a cap (a device never ends).
    return 4 * max_chars + 4 if max_chars else DEFAULT_MAX_BYTES


def read_answer(answer: str | None, answer_file: Path | None,
                max_chars: int = DEFAULT_MAX_ANSWER_CHARS) -> str:
    """The answer text from --answer TEXT, --answer - (standard input) or --answer-file PATH.

    Files and standard input are read with a size cap before decoding; text that is not UTF-8 (a file's
    bytes, or an argument's, which Python hands over as surrogate escapes) is an input error."""
    if answer is not None and answer_file is not None:
        raise InputError("give either --answer or --answer-file, not both", field="answer")
    limit = _answer_bytes_cap(max_chars)
    if answer_file is not None:
        return read_utf8(answer_file, "answer file", limit=limit)
    if answer == "-":
        data = sys.stdin.buffer.read(limit + 1)
        if len(data) > limit:
            raise InputError(f"larger than {limit:,} bytes: refusing to read it", file="<stdin>")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 (byte {e.start})", file="<stdin>") from e
    if answer is None:
        raise InputError("no answer: give --answer TEXT, --answer - (standard input) or --answer-file PATH")
    return answer_text(answer, "--answer")


def answer_text(value: str, flag: str) -> str:
    """A command-line argument as text, or InputError when its bytes were not UTF-8."""
    try:
        return check_text(value)
    except TextProblem as e:
        raise InputError(str(e), field=flag) from e


def pick_rubric(
    grader: Grader, question_id: str | None, question: str | None, reference: str | None,
    max_score: float | None = None,
) -> Rubric:
    from grader.pipeline.grader import adhoc_rubric

    if question_id is not None:
        if question is not None or reference is not None:
            raise InputError("give --question-id, or --question with --reference, not both")
        if max_score is not None:
            raise InputError("--max-score is for ad hoc questions; a stored rubric sets its own max_score",
                             field="max_score")
        return grader.rubric(question_id)
    if question is None or reference is None:
        raise InputError("give --question-id ID, or an ad hoc --question TEXT with --reference TEXT")
    if max_score is not None and not max_score > 0:
        raise InputError(f"--max-score must be above 0, not {max_score:g}", field="max_score")
    return adhoc_rubric(question, reference, max_score if max_score is not None else 5.0)


def judge_line(result: GradeResult, grader: Grader) -> str:
    """Which judge graded, in one line: the output always says whether an LLM was involved."""
    j = result.judge
    if j is None:
        return f"judge: {grader.describe_judge()}"
    mode = f" (mode {j.mode})" if j.mode else ""
    line = f"judge: {result.judge_used} model {j.model}{mode}"
    if j.status == "unscored":
        line += f" — unscored: {j.error}"
        line += "; offline score used" if result.status == "fallback" else "; no fallback"
    elif j.cached:
        line += " [cached]"
    return line


@contextmanager
def one_torch_thread(runtime: str = "torch") -> Iterator[None]:
    """Encode one answer on one torch thread (unless OMP_NUM_THREADS says otherwise); restore afterwards.

    One answer is a handful of small matrix products. When the cores are busy, a second OpenMP thread makes
    every layer wait for a time slice: cold `grader grade` took 5.2 s instead of 3.0 s on a loaded 2-core
    machine. The embeddings are bit-identical either way (checked on 200 answers). An ONNX runtime
    (``runtime``, the embedding.runtime setting) does not run torch: then torch is not even imported.
    """
    from grader.embedding.runtime import uses_torch

    if os.environ.get("OMP_NUM_THREADS") or not uses_torch(runtime):
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _bar(fraction: float, width: int = 24) -> str:
    n = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * n + "░" * (width - n)


def _score_line(result: GradeResult) -> Text:
    from rich.text import Text

    head = Text()
    if result.score is None:
        head.append("No score", style="bold red")
        head.append(f"  ({result.status})", style="red")
        return head
    frac = result.score / result.max_score
    colour = "green" if frac >= 0.7 else "yellow" if frac >= 0.4 else "red"
    head.append(f"Score {result.score:.1f} / {result.max_score:g}  ", style=f"bold {colour}")
    head.append(_bar(frac), style=colour)
    head.append(f"  {frac:.0%}", style=colour)
    if result.status == "fallback":
        head.append("  (offline fallback)", style="yellow")
    return head


def _criteria_table(result: GradeResult) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False, expand=False)
    table.add_column("", width=1)
    table.add_column("key point", overflow="fold", ratio=1)
    table.add_column("weight", justify="right")
    table.add_column("coverage", justify="right")
    table.add_column("verdict")
    for c in result.criteria:
        mark, style = _MARKS[c.status]
        cov = f"{c.coverage:.0%}" if c.coverage is not None else "–"
        verdict = Text(c.verdict or c.status, style=style if c.verdict else "dim")
        table.add_row(Text(mark, style=style), plain_math(c.text), f"{c.weight:.0%}", cov, verdict)
    return table


def render(result: GradeResult, rubric: Rubric, grader: Grader, width: int = 80) -> RenderableType:
    """The grade as a panel: score bar, key points, feedback, warnings, and which judge graded.

    `width` is the terminal's: a title too long for the border is shortened at a word boundary and the whole
    question is printed inside instead."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    question = plain_math(" ".join(rubric.question.split()))
    full_title = f"{rubric.id} · {question}"
    title = shorten(full_title, max(width - 8, 20))
    parts: list[RenderableType] = []
    if title != full_title:
        parts += [Text(question, style="bold"), Text("")]
    parts += [_score_line(result), Text(""), _criteria_table(result), Text(""), Text(plain_math(result.feedback.text))]
    parts += [Text(f"warning: {w}", style="yellow") for w in result.warnings]
    parts += review_lines(result)
    tail = judge_line(result, grader)
    if result.elapsed_ms is not None:
        tail += f" · {result.elapsed_ms:.0f} ms"
    parts.append(Text(tail, style="dim"))
    return Panel(Group(*parts), title=title, title_align="left", border_style="cyan")


def review_lines(result: GradeResult) -> list[RenderableType]:
    """The grade's confidence and, when a person should check it, why."""
    from rich.text import Text

    if result.confidence is None and not result.review:
        return []
    line = Text("confidence ", style="bold")
    if result.confidence is not None:
        c = result.confidence
        line.append(f"{c:.0%}", style="green" if c >= 0.7 else "yellow" if c >= 0.4 else "red")
    else:
        line.append("–", style="dim")
    line.append("  · review: " + ("yes" if result.review else "not needed"), style="yellow" if result.review else "dim")
    out: list[RenderableType] = [line]
    out += [Text(f"  review ({r.code}): {r.message}", style="yellow") for r in result.review]
    return out


def register(app: typer.Typer) -> None:
    @app.command("grade")
    def grade(
        question_id: Annotated[
            str | None,
            typer.Option("--question-id", "-q", metavar="ID",
                         help="Question id, e.g. easy-2 (grader rubric list shows them)."),
        ] = None,
        question: Annotated[str | None, typer.Option("--question", help="Ad hoc question text.")] = None,
        reference: Annotated[
            str | None, typer.Option("--reference", help="Ad hoc reference answer (with --question).")
        ] = None,
        max_score: Annotated[
            float | None,
            typer.Option("--max-score", help="Scale of an ad hoc question (default 5)."),
        ] = None,
        answer: Annotated[
            str | None, typer.Option("--answer", "-a", help="The answer text, or '-' to read standard input.")
        ] = None,
        answer_file: Annotated[
            Path | None, typer.Option("--answer-file", help="Read the answer from a UTF-8 file.")
        ] = None,
        judge: JudgeOpt = None,
        base_url: BaseUrlOpt = None,
        model: ModelOpt = None,
        provider: ProviderOpt = None,
        prompt: PromptOpt = None,
        samples: SamplesOpt = None,
        rubrics: RubricsOpt = None,
        config: ConfigOpt = None,
        no_cache: NoCacheOpt = False,
        no_fallback: NoFallbackOpt = False,
        max_answer_chars: MaxCharsOpt = DEFAULT_MAX_ANSWER_CHARS,
        as_json: JsonOpt = False,
        pass_mark: PassMarkOpt = None,
        pass_margin: PassMarginOpt = None,
    ) -> None:
        """Grade one answer: by --question-id from the bank, or ad hoc with --question and --reference.

        Exit codes: 0 graded; 2 usage or input error; 3 the judge failed and --no-fallback forbids the
        offline score.
        """
        import warnings

        # Library deprecation notices are for developers, not for someone reading a grade.
        warnings.filterwarnings("ignore", category=FutureWarning)
        settings = build_settings(config, judge, base_url, model, provider, prompt, samples, rubrics, no_cache)
        if no_fallback:
            settings.judge.fallback = False
        apply_pass_mark(settings, pass_mark, pass_margin)
        text = read_answer(answer, answer_file, max_answer_chars)
        for flag, value in (("--question", question), ("--reference", reference), ("--question-id", question_id)):
            if value is not None:
                answer_text(value, flag)

        from grader.pipeline.grader import Grader, check_answer

        grader = Grader(settings, max_answer_chars=max_answer_chars)
        rub = pick_rubric(grader, question_id, question, reference, max_score)
        check_answer(text, max_answer_chars)  # input errors before torch is imported
        with one_torch_thread(settings.embedding.runtime):
            result = grader.grade(text, rubric=rub)

        if as_json:
            # The API gives the same: result.model_dump_json(indent=2).
            typer.echo(result.model_dump_json(indent=2))
        else:
            from rich.console import Console

            console = Console()
            console.print(render(result, rub, grader, console.width))
        if result.status == "unscored":
            reason = result.judge.error if result.judge is not None else "no verdict"
            raise JudgeUnavailable(f"judge unavailable and fallback disabled: {reason}")
