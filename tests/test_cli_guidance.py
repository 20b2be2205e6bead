"""The CLI guides: help that reads well at the terminal's width, one name per concept, and an unknown question
id answered with the close ones, in `grade`, `rubric show` and in `batch`'s error records alike."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
from cli_runner import run_cli

from grader.cli import app

WIDTH = 100


def _commands() -> list[list[str]]:
    """Every command path, e.g. ['rubric', 'list'], from the real command tree."""
    root = typer.main.get_command(app)
    out: list[list[str]] = [[]]

    def walk(group: Any, prefix: list[str]) -> None:
        # Typer vendors click: its groups are not click.Group instances, so go by the attribute.
        for name, cmd in group.commands.items():
            out.append([*prefix, name])
            if hasattr(cmd, "commands"):
                walk(cmd, [*prefix, name])

    walk(root, [])
    assert ["rubric", "list"] in out and ["bank", "import"] in out
    return out


@pytest.fixture(autouse=True)
def _terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", str(WIDTH))


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "grader")
def test_help_is_wrapped_to_the_terminal_and_names_no_python_types(path: list[str]) -> None:
    r = run_cli(*path, "--help")
    assert r.code == 0, r.err
    text = r.out
    assert not re.search(r"<(bool|str|int|float|path|list\[[^\]]*\])[^>]*>", text), text
    assert "{" not in text.splitlines()[0]  # usage line: INPUT, not {dataset}
    assert "..." not in text.split("Commands:")[-1] if "Commands:" in text else True
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= WIDTH
    # Greedy wrapping: a line of a paragraph ends only where the next word would not fit (no mid-sentence breaks
    # carried over from the source's line breaks).
    # Within a definition list (Options:, Commands:) an entry starts at indent 2; its wrapped help is deeper.
    in_list = False
    for a, b in itertools.pairwise(lines):
        in_list = in_list or (a.endswith(":") and not a.startswith(" "))
        indent_a, indent_b = len(a) - len(a.lstrip()), len(b) - len(b.lstrip())
        continues = indent_a == indent_b and (indent_b > 2 if in_list else indent_b >= 2)
        if a.strip() and b.strip() and continues:
            assert len(a) + 1 + len(b.split()[0]) > WIDTH - 2, f"short line in a paragraph:\n{a}\n{b}"


@pytest.mark.parametrize("path", [["batch"], ["eval"], ["tune"], ["bank", "import"]])
def test_input_file_is_called_input_everywhere(path: list[str]) -> None:
    usage = run_cli(*path, "--help").out.splitlines()[0]
    assert re.search(r"\[OPTIONS\] INPUT\b", usage), usage


def test_flags_show_no_value_and_options_one_metavar_style() -> None:
    out = run_cli("grade", "--help").out
    assert re.search(r"^\s+--json\s{2,}Print JSON", out, re.M)
    assert re.search(r"--question-id, -q ID|-q, --question-id ID", out)
    assert "--max-score NUMBER" in out and "--answer-file PATH" in out


def test_batch_error_record_suggests_the_close_id(tmp_path: Path, seed_rubrics_dir: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "r1", "question_id": "easy2", "answer": "Pruning drops weights."}) + "\n")
    out = tmp_path / "out.jsonl"
    r = run_cli("batch", src, "-o", out, "--judge", "none", "--no-progress", "--rubrics", seed_rubrics_dir)
    assert r.code == 0, r.err
    record = json.loads(out.read_text().splitlines()[0])
    assert record["status"] == "error" and "did you mean 'easy-2'?" in record["error"]
