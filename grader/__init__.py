"""grader: grade free-text answers against reference answers.

Rubrics of weighted key points, embedding similarity, an LLM judge, and an eval harness
that measures agreement with human grades.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # Lazy so that `import grader` (and `grader --help`) does not pull in torch.
    if name == "Grader":
        from grader.pipeline.grader import Grader

        return Grader
    raise AttributeError(f"module 'grader' has no attribute {name!r}")
