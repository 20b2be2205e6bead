"""The encoder's forward pass on ONNX Runtime: no torch, no transformers, no sentence-transformers.

The model file is made once per (model, runtime, versions) by grader/embedding/onnx_export.py and kept
in a cache folder (``model_cache_root()``: ``$XDG_CACHE_HOME/grader/models``, else ``~/.cache/grader/
models``); its name carries a hash of what the file depends on (the model folder and its weights' size
and time, fp32 or int8, onnxruntime's version, this module's format version), so a changed model or an
upgraded onnxruntime gets a new file instead of a stale one. Loading it imports onnxruntime and numpy
only: that is what makes a cold `grader grade` fast.

The graph outputs the token embeddings (batch, length, hidden); the sentence embedding is the masked
mean over tokens and the L2 norm, as sentence-transformers' Pooling(mean) + Normalize compute it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grader.embedding.light_model import LightSpec

MODEL_FILE = "model.onnx"
# Bumped whenever the exported graph changes, so old cache entries are never read by new code.
FORMAT_VERSION = 3
ONNX_RUNTIMES = ("onnx", "onnx-int8")
# Padded tokens per onnxruntime call (32 answers of 64 word pieces): see OnnxRuntime.forward. Measured
# on 1,000 synthetic answers: peak RSS 379 MB vs 661 MB unsliced, same CPU time.
MAX_BATCH_TOKENS = 2048


def model_cache_root() -> Path:
    """Where converted models live: one folder per user, shared by every project and working directory."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "grader" / "models"


@dataclass(frozen=True)
class OnnxTarget:
    """Where one conversion lives and what it depends on."""

    folder: Path
    quantized: bool
    key: dict[str, Any] = field(hash=False)

    @property
    def model_file(self) -> Path:
        return self.folder / MODEL_FILE

    def ready(self) -> bool:
        return self.model_file.is_file() and (self.folder / "manifest.json").is_file()


def _ort_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def onnx_target(spec: LightSpec, runtime: str, cache_root: Path | None = None) -> OnnxTarget:
    """The cache folder for this model folder and runtime ("onnx" or "onnx-int8")."""
    if runtime not in ONNX_RUNTIMES:
        raise ValueError(f"not an ONNX runtime: {runtime!r}")
    weights = spec.path / "model.safetensors"
    st = weights.stat()
    key = {
        "model": str(spec.path.resolve()),
        "weights_bytes": st.st_size,
        "weights_mtime_ns": st.st_mtime_ns,
        "runtime": runtime,
        "onnxruntime": _ort_version(),
        "format": FORMAT_VERSION,
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    # The folder's own name is often generic ("model"): its parent's name says which model it is.
    parts = spec.path.resolve().parts[-2:]
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(parts)).strip("-") or "model"
    return OnnxTarget(folder=(cache_root or model_cache_root()) / f"{slug}-{runtime}-{digest}",
                      quantized=runtime == "onnx-int8", key=key)


def session_options(threads: int | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # The file already holds the BERT fusions (done once at conversion); "extended" adds onnxruntime's own, and
    # "all" only layout changes for convolutions, which cost ~45 ms of a cold grade and nothing at run time here.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.intra_op_num_threads = threads or os.cpu_count() or 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # Spinning worker threads burn the time slices other processes (and our own signal code) need on a
    # small, busy machine; waking them costs microseconds per op.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return opts


def mean_pool(tokens: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Pooling(mean) + Normalize: masked mean over tokens, clamped count, unit length (eps 1e-12)."""
    mask = attention_mask.astype(tokens.dtype)[:, :, None]
    summed = (tokens * mask).sum(axis=1)
    count = np.maximum(mask.sum(axis=1), 1e-9)
    pooled = summed / count
    norm = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
    return (pooled / norm).astype(np.float32)


class OnnxRuntime:
    """An onnxruntime session over a converted model: forward(ids, mask, types) -> (tokens, sentences)."""

    def __init__(self, target: OnnxTarget, name: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        self.name = name
        self.target = target
        self.session = ort.InferenceSession(str(target.model_file), sess_options=session_options(threads),
                                            providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self.session.get_inputs()}

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        types = token_type_ids if token_type_ids is not None else np.zeros_like(input_ids)
        # A batch of long answers runs in slices of at most MAX_BATCH_TOKENS padded tokens: attention's
        # working memory grows with rows x length², and onnxruntime keeps its peak allocation for the
        # session's lifetime. Rows are independent: slicing changes float32 results only by rounding.
        rows = max(1, MAX_BATCH_TOKENS // max(1, input_ids.shape[1]))
        parts = []
        for start in range(0, input_ids.shape[0], rows):
            part = slice(start, start + rows)
            feeds = {"input_ids": input_ids[part], "attention_mask": attention_mask[part], "token_type_ids": types[part]}
            parts.append(self.session.run(["token_embeddings"], {k: v for k, v in feeds.items() if k in self._inputs})[0])
        tokens = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return tokens, mean_pool(tokens, attention_mask)
