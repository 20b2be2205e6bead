"""The encoder's one-pass token encodings against SentenceTransformer.encode, with the real bundled model."""

from __future__ import annotations

import numpy as np
import pytest

from grader.embedding.encoder import WINDOW_OVERLAP, Encoder, bundled_model_path

TEXTS = [
    "Pruning removes the least important weights from a network.",
    "A language model assigns probabilities to sequences of words and predicts the next one.",
    "Yes.",
    "Dropout randomly zeroes activations during training; it is a regulariser that reduces overfitting "
    "by stopping units from co-adapting, and at inference every unit is kept and scaled.",
    "tokens tokens tokens " * 200,  # longer than the model's 256 word pieces: read in windows, not an error
    "Überanpassung — overfitting — means the model memorises the training data (naïve, ≥ 3 words).",
    "BERT",
    "Gradient descent moves the weights against the gradient of the loss.",
]


def test_sentence_embeddings_equal_sentence_transformers(encoder: Encoder) -> None:
    encs = encoder.encode_tokens(TEXTS)
    fits = [i for i, e in enumerate(encs) if e.n_tokens <= encoder.max_length - 2]
    assert len(fits) == len(TEXTS) - 1  # all but the one long text fit the model's window
    ours = np.stack([encs[i].embedding for i in fits])
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(bundled_model_path()), device="cpu")
    theirs = st.encode([TEXTS[i] for i in fits], normalize_embeddings=True, show_progress_bar=False)
    assert np.abs(ours - theirs).max() < 1e-4


def test_a_long_text_is_read_whole_in_windows(encoder: Encoder) -> None:
    filler = "The weather was mild and the meeting ran long, as meetings do. " * 40  # ~560 word pieces
    point = "Pruning removes the least important weights from a neural network."
    long_enc, short_enc = encoder.encode_tokens([filler + point, point])
    assert long_enc.n_tokens > 2 * encoder.max_length
    # Every word piece once, in order, with offsets into the whole text: the late sentence is there.
    assert np.all(np.diff(long_enc.offsets[:, 0]) > 0)
    tail = long_enc.text[int(long_enc.offsets[-short_enc.n_tokens, 0]) :]
    assert tail == point
    # Its word pieces carry the sentence's meaning as when it stands alone (context differs, so not equal).
    a, b = long_enc.tokens[-short_enc.n_tokens :].mean(0), short_enc.tokens.mean(0)
    assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.7


def test_batches_yield_every_text_once_longest_first(encoder: Encoder) -> None:
    texts = TEXTS * 20  # 160 texts: three batches of at most batch_size
    groups = list(encoder.encode_tokens_batches(texts))
    seen = [i for g in groups for i, _ in g]
    assert sorted(seen) == list(range(len(texts)))
    assert all(len(g) <= encoder.batch_size for g in groups)
    # A text longer than the model's window is several sequences (overlapping windows); each is encoded once.
    body = encoder.max_length - 2
    step = body - WINDOW_OVERLAP
    n_seq = 0
    for t in texts:
        n = len(encoder.tokenizer([t], truncation=False)["input_ids"][0]) - 2
        n_seq += 1 if n <= body else 1 + -(-(n - body) // step)
    assert len(groups) <= -(-n_seq // encoder.batch_size)
    # Sorted by token count across the whole call, so each batch pads only to its own longest text.
    firsts = [max(e.n_tokens for _, e in g) for g in groups]
    assert firsts == sorted(firsts, reverse=True)
    for g in groups:
        for i, e in g:
            assert e.text == texts[i]


def test_batch_composition_does_not_change_an_encoding(encoder: Encoder) -> None:
    alone = [encoder.encode_tokens([t])[0] for t in TEXTS]
    together = encoder.encode_tokens(TEXTS)
    for a, b in zip(alone, together, strict=True):
        assert a.token_ids == b.token_ids
        assert np.array_equal(a.offsets, b.offsets)
        assert np.abs(a.embedding - b.embedding).max() < 1e-4
        assert np.abs(a.tokens - b.tokens).max(initial=0.0) < 1e-3


def test_offsets_point_at_the_word_pieces(encoder: Encoder) -> None:
    text = "Pruning removes weights."
    enc = encoder.encode_tokens([text])[0]
    pieces = [text[s:e] for s, e in enc.offsets]
    assert "".join(pieces).replace("##", "") == "Pruningremovesweights."
    assert len(pieces) == enc.n_tokens == enc.tokens.shape[0]


@pytest.mark.parametrize("texts", [[], ["x"]])
def test_small_inputs(encoder: Encoder, texts: list[str]) -> None:
    assert len(encoder.encode_tokens(texts)) == len(texts)


def test_the_default_runtime_is_onnx() -> None:
    from grader.config import EmbeddingSettings
    from grader.embedding.encoder import get_encoder

    enc = get_encoder(EmbeddingSettings())
    assert enc.runtime.name == "onnx" and enc.model is None  # no torch model behind it


def test_every_runtime_gives_the_same_encodings(encoder: Encoder) -> None:
    from sentence_transformers import SentenceTransformer

    from grader.embedding.light_model import LightSentenceModel

    reference = Encoder(runtime="sentence-transformers")
    assert isinstance(reference.model, SentenceTransformer)
    light = Encoder(runtime="torch")
    assert isinstance(light.model, LightSentenceModel)  # no sentence_transformers import
    for a, b in zip(light.encode_tokens(TEXTS), reference.encode_tokens(TEXTS), strict=True):
        assert a.token_ids == b.token_ids and np.array_equal(a.offsets, b.offsets)
        assert np.abs(a.embedding - b.embedding).max() < 1e-5
        assert np.abs(a.tokens - b.tokens).max(initial=0.0) < 1e-5
    assert np.abs(light.encode(TEXTS) - reference.encode(TEXTS)).max() < 1e-5
    # The default (ONNX, float32): the same word pieces and offsets; numbers equal to float rounding.
    for a, b in zip(encoder.encode_tokens(TEXTS), light.encode_tokens(TEXTS), strict=True):
        assert a.token_ids == b.token_ids and np.array_equal(a.offsets, b.offsets)
        assert np.abs(a.embedding - b.embedding).max() < 1e-4
        assert np.abs(a.tokens - b.tokens).max(initial=0.0) < 1e-3
    # SentenceTransformer.encode reads a long text's first 256 word pieces only; ours reads it whole (windows).
    fit = [t for t, e in zip(TEXTS, encoder.encode_tokens(TEXTS), strict=True) if e.n_tokens <= encoder.max_length - 2]
    assert len(fit) == len(TEXTS) - 1
    assert np.abs(encoder.encode(fit) - reference.encode(fit)).max() < 1e-4


def test_runtimes_never_share_cached_encodings() -> None:
    onnx, int8 = Encoder(runtime="onnx"), Encoder(runtime="onnx-int8")
    assert onnx.model_id != int8.model_id
    a = onnx.encode_tokens_cached(["Cached per runtime."])[0]
    b = int8.encode_tokens_cached(["Cached per runtime."])[0]
    assert a is not b and np.abs(a.embedding - b.embedding).max() > 1e-4
