"""Rubric files on disk: rubrics/<bank>/<id>.yaml, one per question.

``load_rubric`` raises one InputError naming file, line and field; ``check_rubric`` (used by
``grader rubric validate``) returns every problem of a file instead of stopping at the first.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grader.errors import InputError
from grader.models import Question, Rubric
from grader.rubric.yamlio import FlowList, YamlDoc, dump_yaml, format_loc, line_of, parse_yaml, read_text

RUBRIC_SUFFIXES = (".yaml", ".yml")

# The order keys are written in: identity first, then the question, then the points.
_KEY_ORDER = (
    "schema_version",
    "id",
    "bank",
    "question",
    "reference_answer",
    "difficulty",
    "topic",
    "max_score",
    "source",
    "builder",
    "criteria",
)
_CRITERION_ORDER = ("id", "text", "weight", "keywords", "synonyms", "levels", "origin", "fingerprint")


def _pydantic_problems(e: ValidationError, path: Path | str, node: Any) -> list[InputError]:
    problems = []
    for err in e.errors():
        loc = tuple(err["loc"])
        msg = err["msg"]
        if not loc and "criterion id" in msg:
            loc = ("criteria",)  # raised by the rubric-level validator; the criteria list is where to look
        if err["type"] == "missing":
            msg = "missing required field"
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "value_error":
            msg = msg.removeprefix("Value error, ")
        problems.append(InputError(msg, file=path, line=line_of(node, loc), field=format_loc(loc) or None))
    return problems


@dataclass
class RubricCheck:
    """One rubric file, checked: the rubric (if it validates), every problem, and the parsed document."""

    rubric: Rubric | None
    problems: list[InputError]
    doc: YamlDoc | None = None

    def line_of(self, *loc: str | int) -> int | None:
        return line_of(self.doc.node, loc) if self.doc is not None else None


def check_rubric(path: Path) -> RubricCheck:
    """Parse and validate one rubric file, collecting every problem found."""
    try:
        doc, problems = parse_yaml(read_text(path), path)
    except InputError as e:
        return RubricCheck(None, [e])
    if not isinstance(doc.data, dict):
        return RubricCheck(None, [*problems, InputError("a rubric file must be a YAML mapping", file=path, line=1)],
                           doc)
    try:
        rubric = Rubric.model_validate(doc.data)
    except ValidationError as e:
        return RubricCheck(None, problems + _pydantic_problems(e, path, doc.node), doc)
    if sum(c.weight for c in rubric.criteria) <= 0:
        problems.append(
            InputError("no criteria: a rubric needs at least one key point", file=path,
                       line=line_of(doc.node, ("criteria",)), field="criteria")
        )
    return RubricCheck(rubric, problems, doc)


def _load(path: Path) -> tuple[Rubric, RubricCheck]:
    check = check_rubric(path)
    if check.problems:
        raise check.problems[0]
    assert check.rubric is not None  # no problems means it validated
    return check.rubric, check


def load_rubric(path: str | Path) -> Rubric:
    """One rubric file; raises InputError (file:line: field: message) on the first problem."""
    return _load(Path(path))[0]


def rubric_files(directory: str | Path) -> list[Path]:
    """Every *.yaml/*.yml under ``directory`` (recursively), sorted; other files are not rubrics."""
    directory = Path(directory)
    if directory.is_file():
        return [directory]
    if not directory.is_dir():
        raise InputError("no such rubric file or folder", file=directory)
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in RUBRIC_SUFFIXES)


def load_rubrics(directory: str | Path) -> list[Rubric]:
    """All rubrics under ``directory``; raises on the first bad file or a duplicated (bank, id)."""
    rubrics: list[Rubric] = []
    seen: dict[tuple[str, str], Path] = {}
    for path in rubric_files(directory):
        rubric, check = _load(path)
        key = (rubric.bank, rubric.id)
        if key in seen:
            raise InputError(f"duplicate question id {rubric.id!r} (also in {seen[key]})", file=path,
                             line=check.line_of("id"), field="id")
        seen[key] = path
        rubrics.append(rubric)
    return rubrics


# A YAML alias or anchor: such a file takes the checked loader, which refuses them (grader/yamlsafe.py).
_ALIAS = re.compile(r"(?:^|[\s\[{,:-])[*&][^\s,\]}]")


def load_bank_quickly(directory: str | Path) -> list[Rubric]:
    """The rubrics of a folder, for reading only (the bank's other questions, for the off-topic check).

    libyaml and the model's validation, without the line-tracking checks of ``load_rubrics``: a cold grade reads
    the whole bank, and the pure-Python parser costs ~10 ms a file. A file that does not load this way (or holds
    an alias) goes through the checked loader; one that fails that too is left out, and reports its problem,
    with file and line, when an answer is graded against it.
    """
    import yaml

    out: list[Rubric] = []
    for path in rubric_files(directory):
        try:
            text = path.read_text(encoding="utf-8")
            if _ALIAS.search(text):
                raise ValueError("aliases")
            data = yaml.load(text, Loader=yaml.CSafeLoader)
            out.append(Rubric.model_validate(data))
        except Exception:  # any failure takes the checked path, which names the problem
            try:
                out.append(load_rubric(path))
            except InputError:
                continue
    return out


def find_rubric_path(rubrics_dir: str | Path, question_id: str) -> Path:
    """The file holding ``question_id`` ('id' or 'bank/id') under ``rubrics_dir``."""
    rubrics_dir = Path(rubrics_dir)
    if not rubrics_dir.is_dir():
        raise InputError(f"no rubric folder to look up {question_id!r} in", file=rubrics_dir)
    bank, _, qid = question_id.rpartition("/")
    candidates = [p for p in rubric_files(rubrics_dir) if p.stem == qid]
    if bank:
        candidates = [p for p in candidates if p.parent.name == bank]
    if not candidates:
        # Slow path: a file whose name differs from the id it holds.
        for p in rubric_files(rubrics_dir):
            try:
                r = load_rubric(p)
            except InputError:
                continue
            if r.id == qid and (not bank or r.bank == bank):
                candidates.append(p)
    if not candidates:
        hint = _did_you_mean(rubrics_dir, question_id)
        raise InputError(f"unknown question id {question_id!r}: no rubric for it in {rubrics_dir}/{hint}")
    if len(candidates) > 1:
        where = ", ".join(str(p) for p in candidates)
        raise InputError(
            f"question id {question_id!r} is ambiguous ({where}); write it as bank/id, "
            f"e.g. {candidates[0].parent.name}/{qid}"
        )
    return candidates[0]


def _did_you_mean(rubrics_dir: Path, question_id: str) -> str:
    """'; did you mean 'easy-2'? ...' for ids close to a mistyped one (by file name: no rubric is parsed)."""
    import difflib

    files = rubric_files(rubrics_dir)
    known = [f"{p.parent.name}/{p.stem}" for p in files] if "/" in question_id else [p.stem for p in files]
    scored = sorted(((difflib.SequenceMatcher(None, question_id, k).ratio(), k) for k in set(known)), reverse=True)
    # The best match, and any about as close (easy-1 vs easy-7 for "easy"); not a list of everything similar.
    close = [k for r, k in scored[:3] if r >= 0.6 and r >= scored[0][0] - 0.05]
    if not close:
        return ""
    return f"; did you mean {' or '.join(repr(c) for c in close)}? (`grader rubric list` shows every id)"


def find_rubric(rubrics_dir: str | Path, question_id: str) -> Rubric:
    """The rubric for ``question_id`` ('easy-2' or 'interview/easy-2'); InputError naming id and folder."""
    return load_rubric(find_rubric_path(rubrics_dir, question_id))


def rubric_to_dict(rubric: Rubric) -> dict[str, Any]:
    data = rubric.model_dump(mode="json")
    out: dict[str, Any] = {k: data[k] for k in _KEY_ORDER if k in data and data[k] is not None}
    out.update({k: v for k, v in data.items() if k not in out and v is not None})
    criteria = []
    for c in data.get("criteria", []):
        item = {k: c[k] for k in _CRITERION_ORDER if c.get(k) is not None}
        # Keywords read best on one line; phrasings are sentences, one per line (an empty list stays `[]`).
        for key in ("keywords", "synonyms"):
            if key in item and (key == "keywords" or not item[key]):
                item[key] = FlowList(item[key])
        if item.get("levels"):
            item["levels"] = {k: v for k, v in item["levels"].items() if v is not None}
        criteria.append(item)
    out["criteria"] = criteria
    return out


def rubric_to_yaml(rubric: Rubric) -> str:
    return dump_yaml(rubric_to_dict(rubric))


def write_rubric(rubric: Rubric, path: str | Path) -> Path:
    """Write ``rubric`` as readable YAML (atomically: a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(rubric_to_yaml(rubric))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


_COMMENT = re.compile(r"(?:^|\s)#", re.MULTILINE)


def has_yaml_comments(text: str) -> bool:
    """Whether a YAML text may hold comments (a rewrite from the model cannot keep them).

    A '#' after a space inside a quoted string counts too: a needless backup beats a lost comment.
    """
    return bool(_COMMENT.search(text))


def rewrite_rubric(rubric: Rubric, path: str | Path) -> tuple[bool, Path | None]:
    """Replace the rubric file at ``path`` only if its content changes: (written, backup).

    The rewrite comes from the parsed model, so comments a person put in the file would be lost; when
    the old file has any, it is kept beside the new one as ``<name>.bak`` (returned as backup).
    """
    path = Path(path)
    new = rubric_to_yaml(rubric)
    old = path.read_text(encoding="utf-8") if path.is_file() else None
    if old == new:
        return False, None
    backup = None
    if old is not None and has_yaml_comments(old):
        backup = path.with_name(path.name + ".bak")
        backup.write_text(old, encoding="utf-8")
    write_rubric(rubric, path)
    return True, backup


def rubric_path(rubrics_dir: str | Path, question: Question) -> Path:
    """Where the rubric of ``question`` (a Question or a Rubric) lives: <rubrics_dir>/<bank>/<id>.yaml."""
    return Path(rubrics_dir) / question.bank / f"{question.id}.yaml"
