"""A small hand-written rubric for the judge tests (independent of the rubric builders)."""

from __future__ import annotations

from grader.models import CreditLevels, Criterion, Rubric


def pruning_rubric(max_score: float = 5.0) -> Rubric:
    return Rubric(
        id="easy-2",
        question="What is pruning in neural networks, and why do it?",
        reference_answer=(
            "Pruning removes the least important weights or neurons from a trained network, "
            "which makes the model smaller and faster at inference with little loss of accuracy."
        ),
        max_score=max_score,
        criteria=[
            Criterion(id="c1", text="Pruning removes the least important weights or neurons.", weight=2,
                      levels=CreditLevels(full="says which weights go and that they are removed",
                                          partial="says weights are removed without saying which",
                                          none="does not mention removing weights")),
            Criterion(id="c2", text="The pruned model is smaller and faster.", weight=1),
            Criterion(id="c3", text="Accuracy is mostly preserved.", weight=1),
        ],
    )
