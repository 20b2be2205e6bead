"""Printing a rubric for people (`grader rubric show`)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from grader.models import Rubric


def print_rubric(rubric: Rubric, path: Path | None = None, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    meta = [f"bank {rubric.bank}"]
    if rubric.difficulty:
        meta.append(f"difficulty {rubric.difficulty}")
    if rubric.topic:
        meta.append(f"topic {rubric.topic}")
    meta.append(f"max score {rubric.max_score:g}")
    console.print(Text.assemble((rubric.id, "bold"), "  ", (" | ".join(meta), "dim")))
    console.print(Panel(Text(rubric.question), title="Question", title_align="left"))
    console.print(Panel(Text(rubric.reference_answer), title="Reference answer", title_align="left"))

    weights = rubric.normalised_weights()
    table = Table(title=f"Key points ({len(rubric.criteria)}, builder: {rubric.builder or 'unknown'})",
                  title_justify="left")
    table.add_column("#", no_wrap=True)
    table.add_column("Weight", justify="right", no_wrap=True)
    table.add_column("Key point", ratio=3)
    table.add_column("Keywords", ratio=1)
    for c, w in zip(rubric.criteria, weights, strict=True):
        mark = " (edited)" if c.edited_by_hand else ""
        point = Text(c.text)
        for alt in c.synonyms:  # accepted phrasings earn the point too (judge and offline scorer)
            point.append(f"\n  also: {alt}", style="dim")
        table.add_row(f"{c.id}{mark}", f"{w:.2f}", point, Text(", ".join(c.keywords)))
    console.print(table)
    if path is not None:
        console.print(Text(str(path), style="dim"))
