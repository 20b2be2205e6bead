"""The bundled model loads and encodes with the network unreachable; the encoder's own contract."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from grader.embedding.encoder import bundled_model_path, cache_size, get_encoder
from grader.paths import REPO_ROOT

_PROBE = """
import numpy as np
from grader.config import EmbeddingSettings
from grader.embedding.encoder import get_encoder
enc = get_encoder(EmbeddingSettings())
v = enc.encode(["pruning removes weights", "a language model predicts words"])
assert v.shape == (2, 384), v.shape
assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
print("encoded", enc.name)
"""


def test_model_loads_and_encodes_with_network_disabled(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.upper().endswith("_PROXY")}
    dead = "http://127.0.0.1:9"  # discard port: any connection attempt fails at once
    env.update(
        HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead,
        https_proxy=dead, ALL_PROXY=dead, NO_PROXY="", HF_HOME=str(tmp_path / "hf-home"),  # an empty hub cache: nothing to fall back on
    )
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "encoded all-MiniLM-L6-v2" in proc.stdout


def test_bundled_model_is_the_packaged_directory() -> None:
    path = bundled_model_path()
    assert (path / "model.safetensors").is_file()
    assert (path / "modules.json").is_file()


def test_encoder_is_shared_and_normalised(encoder) -> None:  # type: ignore[no-untyped-def]
    from grader.config import EmbeddingSettings

    assert get_encoder(EmbeddingSettings()) is encoder
    v = encoder.encode(["one", "two words", ""])
    assert v.shape == (3, encoder.dim)
    assert np.allclose(np.linalg.norm(v[:2], axis=1), 1.0, atol=1e-4)


def test_one_pass_gives_the_same_sentence_embedding_as_encode(encoder) -> None:  # type: ignore[no-untyped-def]
    texts = ["Pruning removes the least important weights.", "Short.", "A much longer answer " * 10]
    plain = encoder.encode(texts)
    tok = encoder.encode_tokens(texts)
    for p, t in zip(plain, tok, strict=True):
        assert float(p @ t.embedding) > 0.9999
        assert t.tokens.shape == (t.n_tokens, encoder.dim)
        # Offsets point into the text: the first piece starts the first word.
        assert t.text[t.offsets[0, 0] : t.offsets[0, 1]].lower() in t.text.lower()


def test_fixed_texts_are_encoded_once(encoder) -> None:  # type: ignore[no-untyped-def]
    text = "A reference answer that is cached by model and text."
    first = encoder.encode_tokens_cached([text])[0]
    size = cache_size()
    again = encoder.encode_tokens_cached([text, text])
    assert again[0] is first and again[1] is first
    assert cache_size() == size


def test_unloadable_model_is_an_input_error_naming_the_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from grader.config import EmbeddingSettings
    from grader.errors import InputError

    for model in (str(tmp_path / "missing"), str(tmp_path)):
        with pytest.raises(InputError) as e:
            get_encoder(EmbeddingSettings(model=model))
        assert e.value.field == "embedding.model" and model in str(e.value)
