"""Tuning: grouped folds, the closed-form ridge, nested CV selection, and `grader tune --prompt` end to end
against a loopback OpenAI-compatible server whose two prompt versions differ in quality."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from grader.embedding.calibration import Calibration
from grader.evaluation.tune import BAND_GRID, Candidate, Recipe, TuneInputs, Tuner, _ridge, grouped_folds
from grader.paths import REPO_ROOT


def test_grouped_folds_keep_questions_whole_and_cover_every_row() -> None:
    groups = [f"q{i % 7}" for i in range(50)]
    for k in (None, 3, 7, 100):
        folds = grouped_folds(groups, k)
        seen = np.concatenate(folds)
        assert sorted(seen.tolist()) == list(range(50))
        for f in folds:
            assert len({groups[i] for i in f} & {groups[i] for i in seen if i not in set(f.tolist())}) == 0
    assert len(grouped_folds(groups, None)) == 7
    assert len(grouped_folds(groups, 3)) == 3


def test_closed_form_ridge_matches_sklearn() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 4)) * [1, 10, 0.1, 3] + [0, 5, 1, -2]
    y = x @ [0.3, -0.02, 2.0, 0.1] + rng.normal(0, 0.1, size=80)
    mean, scale, coef, b = _ridge(x, y, 2.5)
    ref = Ridge(alpha=2.5).fit((x - mean) / scale, y)
    assert np.allclose(coef, ref.coef_, atol=1e-9) and b == pytest.approx(ref.intercept_, abs=1e-9)


def _synthetic(n_q: int = 12, per: int = 15, seed: int = 0) -> tuple[TuneInputs, Calibration]:
    rng = np.random.default_rng(seed)
    human = rng.integers(0, 6, size=n_q * per).astype(float)
    signals = [
        {"cos_ref_qd": h / 5 + rng.normal(0, 0.25), "crit_recall_qd": rng.uniform(), "lex_recall_qd": rng.uniform()}
        for h in human
    ]
    good = np.clip(human + rng.normal(0, 0.4, size=human.size), 0, 5)
    noise = rng.uniform(0, 5, size=human.size)
    inputs = TuneInputs(
        signals=signals,
        human=human.tolist(),
        groups=[f"q{i // per}" for i in range(human.size)],
        max_score=5.0,
        judge={"judge/v1": noise.tolist(), "judge/v2": [None if i == 3 else v for i, v in enumerate(good.tolist())]},
    )
    base = Calibration(
        name="base", features=["cos_ref_qd", "crit_recall_qd"], scaler_mean=[0, 0], scaler_scale=[1, 1],
        coefficients=[0.1, 0.0], intercept=0.5, alpha=1.0,
    )
    return inputs, base


def test_tuner_picks_the_informative_prompt_and_weights_by_nested_cv() -> None:
    inputs, base = _synthetic()
    tuner = Tuner(inputs, base, base_prompt="judge/v1", base_weights=(0.3, 0.7), metric="qwk",
                  feature_sets=[("cos_ref_qd",), ("cos_ref_qd", "lex_recall_qd")], alphas=(1.0, 10.0))
    assert tuner.base == Candidate(recipe=Recipe(features=("cos_ref_qd", "crit_recall_qd"), alpha=1.0),
                                   prompt="judge/v1", embedding_weight=0.3)
    result = tuner.run(inner_k=3, resamples=100)
    assert result.chosen.prompt == "judge/v2"
    assert result.chosen.embedding_weight <= 0.4
    assert result.tuned_cv["qwk"].value > result.default_cv["qwk"].value + 0.2
    assert result.difference["qwk"].verdict == "better"
    assert sum(result.fold_choices.values()) == 12  # one choice per held-out question
    assert set(result.judge_only) == {"judge/v1", "judge/v2"}
    assert result.judge_only["judge/v2"]["qwk"].value > 0.8


def test_tuner_without_judge_never_reports_in_sample() -> None:
    inputs, base = _synthetic()
    inputs.judge = {}
    tuner = Tuner(inputs, base, base_prompt=None, base_weights=(0.3, 0.7), metric="pearson", alphas=(1.0,),
                  feature_sets=[("cos_ref_qd",)])
    result = tuner.run(inner_k=3, resamples=50)
    assert result.chosen.prompt is None and result.chosen.judge_weight == 0.0
    # The held-out figure is below the in-sample fit of the same recipe on all rows.
    x = np.array([[s["cos_ref_qd"]] for s in inputs.signals])
    y = np.array(inputs.human) / 5
    mean, scale, coef, b = _ridge(x, y, 1.0)
    in_sample = np.corrcoef(np.clip(((x - mean) / scale) @ coef + b, 0, 1), y)[0, 1]
    assert result.tuned_cv["pearson"].value < in_sample


def test_a_change_that_is_not_shown_better_is_not_adopted() -> None:
    inputs, base = _synthetic(seed=3)
    # The base prompt is the informative one, already well weighted; the alternative is noise.
    inputs.judge = {"judge/v1": inputs.judge["judge/v2"], "judge/v2": inputs.judge["judge/v1"]}
    tuner = Tuner(inputs, base, base_prompt="judge/v1", base_weights=(0.0, 1.0), metric="qwk", alphas=(1.0,),
                  feature_sets=[])
    result = tuner.run(inner_k=3, resamples=100)
    assert result.difference["qwk"].verdict != "better"
    assert not result.adopted
    assert result.written == tuner.base
    assert result.written_cv == result.default_cv


# ---- end to end: `grader tune --prompt A --prompt B` ----------------------------------------------

ANSWER_RE = re.compile(r'<candidate_answer id="[^"]*">\s*(.*?)\s*</candidate_answer', re.S)


def _oracle_server(grades: dict[str, float]) -> Any:
    from servers.fault_server import FaultServer, schema_of, valid_verdict

    class OracleServer(FaultServer):
        """Prompt v2 (marked ORACLE in its system message) grades like the humans; v1 says 2 to everything."""

        def _respond(self, h: Any, body: dict[str, Any]) -> None:
            mode, schema = schema_of(body)
            system = body["messages"][0]["content"]
            user = "\n".join(m["content"] for m in body["messages"][1:] if isinstance(m.get("content"), str))
            m = ANSWER_RE.search(user)
            answer = m.group(1).strip() if m else ""
            allowed = (schema or {}).get("properties", {}).get("score", {}).get("enum", [0, 1, 2, 3, 4, 5])
            target = grades.get(answer, 2.0) if "ORACLE" in system else 2.0
            score = min(allowed, key=lambda a: abs(a - target))
            self.served.append("oracle")
            self._reply(h, mode, json.dumps(valid_verdict(schema, score)), body)

    return OracleServer(reject_json_schema=False)


def test_tune_picks_the_better_prompt_version(mohler_dev_path: Path, tmp_path: Path) -> None:
    from grader.cli import app

    rows = [json.loads(line) for line in mohler_dev_path.read_text().splitlines() if line.strip()]
    keep = [r for r in rows if r["question_id"] in {"1.1", "2.2", "3.4", "4.3", "5.1", "6.6"}]
    data = tmp_path / "set.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in keep))
    grades = {r["answer"].strip(): float(r["score"]) for r in keep}

    prompts = tmp_path / "prompts" / "judge"
    prompts.mkdir(parents=True)
    v1 = (REPO_ROOT / "prompts" / "judge" / "v1.yaml").read_text()
    (prompts / "v1.yaml").write_text(v1)
    v2 = v1.replace("id: judge/v1", "id: judge/v2").replace(
        "You are an exacting examiner", "You are an exacting examiner (ORACLE)", 1)
    assert v2.count("ORACLE") == 1
    (prompts / "v2.yaml").write_text(v2)

    with _oracle_server(grades) as server:
        base = tmp_path / "base.yaml"
        base.write_text(yaml.safe_dump({
            "cache_dir": str(tmp_path / "cache"),
            "judge": {"backend": "openai", "base_url": server.base_url, "model": "fault-model",
                      "prompts_dir": str(tmp_path / "prompts"), "api_key": "not-a-real-key"},
        }))
        out = tmp_path / "tuned.yaml"
        result = CliRunner().invoke(
            app,
            ["tune", str(data), "-o", str(out), "--config", str(base), "--prompt", "judge/v1", "--prompt", "judge/v2",
             "--json", "--resamples", "100", "--inner-folds", "3"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.stdout
        served = server.count
        url = server.base_url
    report = json.loads(result.stdout)
    assert "prompt judge/v2" in report["tuned"]["candidate"]
    assert report["adopted"] is True and report["written"]["candidate"] == report["tuned"]["candidate"]
    assert report["difference"]["qwk"]["verdict"] == "better"
    # Both prompt versions went to the endpoint (identical answers to one question share a cache entry).
    assert served >= 2 * len({(r["question_id"], r["answer"].strip()) for r in keep})
    cfg = yaml.safe_load(out.read_text())
    assert cfg["judge"]["prompt"] == "judge/v2"
    assert cfg["judge"]["base_url"] == url
    assert "api_key" not in cfg["judge"], "a written config must not carry the secret"
    assert cfg["combine"]["embedding_weight"] + cfg["combine"]["judge_weight"] == pytest.approx(1.0)
    assert cfg["combine"]["judge_weight"] >= 0.6
    # The judge-led band is fitted with the weights and recorded with them (grader/pipeline/combine.py).
    assert cfg["combine"]["band"] in BAND_GRID and f"band {cfg['combine']['band']:g}" in report["written"]["candidate"]


def test_the_base_stretch_applies_to_whole_point_grades_only() -> None:
    inputs, base = _synthetic()
    inputs.judge = {}
    stretched = base.model_copy(update={"stretch": 1.2})
    whole = Tuner(inputs, stretched, base_prompt=None, base_weights=(1.0, 0.0), alphas=(1.0,), feature_sets=[])
    assert whole.sig.stretch == 1.2
    plain = Tuner(inputs, base, base_prompt=None, base_weights=(1.0, 0.0), alphas=(1.0,), feature_sets=[])
    # The stretch moves the held-out grades away from the mean: the same recipe, wider spread.
    spread = np.std(whole.cv_base()[0]), np.std(plain.cv_base()[0])
    assert spread[0] > spread[1]
    halves = inputs.model_copy(update={"human": [h + 0.5 if h < 5 else h for h in inputs.human]})
    averaged = Tuner(halves, stretched, base_prompt=None, base_weights=(1.0, 0.0), alphas=(1.0,), feature_sets=[])
    assert averaged.sig.stretch == 1.0
