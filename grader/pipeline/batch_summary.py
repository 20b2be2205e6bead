"""What a `grader batch` OUTPUT holds: counts, mean score, distribution, errors, tokens and time.

The counts cover the whole file: after `--resume` the records an earlier run wrote are counted too (read
back by resume.py), so the summary describes the file a user now has, not only the rows this run added.
`rows` and the rate are this run's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grader.models import GradeResult


@dataclass
class BatchSummary:
    rows: int = 0  # records written by this run
    graded: int = 0
    fallback: int = 0
    unscored: int = 0
    errors: int = 0
    skipped: int = 0  # rows already in OUTPUT (resume)
    score_sum: float = 0.0
    max_score: float | None = None
    histogram: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    elapsed_s: float = 0.0
    cpu_s: float = 0.0  # this process's CPU time while grading: a shared machine's load does not inflate it
    torn_bytes: int = 0
    error_lines: list[int] = field(default_factory=list)  # first few, for the summary
    warnings: list[str] = field(default_factory=list)  # about the run, not a row

    @property
    def scored(self) -> int:
        return self.graded + self.fallback

    @property
    def mean_score(self) -> float | None:
        return round(self.score_sum / self.scored, 4) if self.scored else None

    @property
    def rate(self) -> float:
        return self.rows / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def total(self) -> int:
        """Records in OUTPUT: this run's and an earlier run's."""
        return self.rows + self.skipped

    def count(self, status: str, score: float | None, max_score: float | None, line: int) -> None:
        """One record of OUTPUT, whoever wrote it (the counts, not `rows`)."""
        if status == "error":
            self.errors += 1
            # The first 20 error lines of the file, whatever order the records came in.
            if len(self.error_lines) < 20:
                self.error_lines.append(line)
            elif line < self.error_lines[-1]:
                self.error_lines[-1] = line
            self.error_lines.sort()
            return
        if status == "graded":
            self.graded += 1
        elif status == "fallback":
            self.fallback += 1
        else:
            self.unscored += 1
        if score is not None and max_score:
            self.score_sum += score
            self.max_score = max_score
            # Five equal bins of the score range: [0,1) [1,2) ... [4,5] for a 5-point scale.
            width = max_score / 5
            b = min(int(score / width), 4)
            key = f"{b * width:g}-{(b + 1) * width:g}"
            self.histogram[key] = self.histogram.get(key, 0) + 1

    def add(self, record: dict[str, Any], result: GradeResult | None) -> None:
        """A record this run wrote."""
        self.rows += 1
        if record.get("error") is not None or result is None:
            self.count("error", None, None, int(record["line"]))
            return
        self.count(result.status, result.score, result.max_score, int(record["line"]))
        if result.judge is not None:
            u = result.judge.usage
            self.prompt_tokens += u.prompt_tokens
            self.completion_tokens += u.completion_tokens
            if u.cost_usd is not None:
                self.cost_usd = (self.cost_usd or 0.0) + u.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rows_in_output": self.total,
            "graded": self.graded,
            "fallback": self.fallback,
            "unscored": self.unscored,
            "errors": self.errors,
            "skipped_already_done": self.skipped,
            "mean_score": self.mean_score,
            "max_score": self.max_score,
            "distribution": dict(sorted(self.histogram.items(), key=lambda kv: float(kv[0].split("-")[0]))),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "elapsed_s": round(self.elapsed_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "rows_per_s": round(self.rate, 2),
            "error_lines": self.error_lines,
            "warnings": self.warnings,
        }
