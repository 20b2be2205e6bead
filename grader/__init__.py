"""grader: grade free-text answers against reference answers.

Rubrics of weighted key points, embedding similarity, an LLM judge, and an eval harness
that measures agreement with human grades.
"""

__version__ = "0.1.0"
