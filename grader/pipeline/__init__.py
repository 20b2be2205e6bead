"""The grading pipeline: offline scorer + judge -> combined score, merged criteria, feedback.

`Grader` is imported lazily so that `import grader.pipeline.combine` (pure) stays free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.pipeline.grader import Grader

__all__ = ["Grader"]


def __getattr__(name: str) -> Any:
    if name == "Grader":
        from grader.pipeline.grader import Grader

        return Grader
    raise AttributeError(f"module 'grader.pipeline' has no attribute {name!r}")
