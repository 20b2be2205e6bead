"""Which code runs the embedding model's forward pass: ONNX Runtime (fp32 or int8), torch, or SentenceTransformer.

Every runtime offers one call, ``forward(input_ids, attention_mask, token_type_ids) -> (token embeddings
(B, L, H), unit-length sentence embeddings (B, H))``, on padded int64 numpy arrays, so the encoder's
tokenisation, batching and the scorer's signals are the same whichever runs:

- ``"onnx"`` (the default, chosen by measurement: `grader bench agreement`, `grader bench offline`): the
  model converted once to ONNX with onnxruntime's BERT fusions, run in float32; embeddings equal torch's
  to ~1e-5, and a cold grade imports neither torch nor sentence-transformers.
- ``"onnx-int8"``: the same graph with int8 dynamic quantization of its matrix products; about twice
  the throughput, but outside the agreement limits (single answers near the ramps of point credit and
  the off-topic gates move by up to ~0.7 points), so a choice, not the default.
- ``"torch"``: grader/embedding/light_model.py, the model on torch without sentence-transformers.
- ``"sentence-transformers"``: the library itself (any model it can load).
- ``"auto"``: the measured default, ``DEFAULT_RUNTIME``.

An ONNX runtime needs a plain BERT + mean-pooling folder (what light_model.inspect_model accepts) on the
CPU. When it cannot be used (another model shape, a failed conversion, onnxruntime missing) the encoder
falls back to the torch runtime; if ONNX was asked for explicitly, or was the default and its conversion
or load failed, one warning line says so. Grading never stops over it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from grader.embedding.light_model import LightSentenceModel, LightTokenizer, Unsupported, inspect_model
from grader.embedding.onnx_runtime import ONNX_RUNTIMES, OnnxRuntime, onnx_target

RUNTIMES = ("auto", "onnx", "onnx-int8", "torch", "sentence-transformers")
# The fastest runtime whose grades stay within the agreement limits against the torch runtime (Pearson
# within 0.005, QWK within 0.01, every score within 0.15): see README "Benchmarks".
DEFAULT_RUNTIME = "onnx"

log = logging.getLogger("grader.embedding")


class Runtime(Protocol):
    name: str

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...


def resolve(runtime: str) -> str:
    """The runtime a setting asks for: "auto" is the measured default."""
    return DEFAULT_RUNTIME if runtime == "auto" else runtime


def uses_torch(runtime: str) -> bool:
    """Whether grading with this setting runs torch (unless an ONNX runtime falls back)."""
    return resolve(runtime) not in ONNX_RUNTIMES


class TorchRuntime:
    """A LightSentenceModel or SentenceTransformer behind the common forward call."""

    def __init__(self, model: Any, device: str) -> None:
        self.model = model
        self.device = device
        self.name = "torch" if isinstance(model, LightSentenceModel) else "sentence-transformers"

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray,
                token_type_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        import torch

        arrays = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            arrays["token_type_ids"] = token_type_ids
        feats = {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items()}
        with torch.inference_mode():
            out = self.model.forward(feats)
        sent = torch.nn.functional.normalize(out["sentence_embedding"], p=2, dim=1).cpu().numpy()
        return out["token_embeddings"].cpu().numpy(), sent


@dataclass
class LoadedModel:
    """What the encoder needs from a loaded model, whichever runtime runs it."""

    runtime: Runtime
    tokenizer: Any
    max_seq_length: int
    dim: int
    model: Any | None = None  # the torch model (LightSentenceModel / SentenceTransformer), if any


def load_model(location: str, runtime: str = "auto", device: str = "cpu", local_files_only: bool = True,
               cache_root: Path | None = None) -> LoadedModel:
    """Load the model at ``location`` on the runtime ``runtime`` names (see the module docstring)."""
    from grader.embedding.light_model import load_sentence_model

    name = resolve(runtime)
    if name not in RUNTIMES:
        raise ValueError(f"unknown embedding runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if name in ONNX_RUNTIMES:
        try:
            return load_onnx(location, name, device, cache_root)
        except Unsupported as e:
            # The default meets a model it does not fit (say, a hub name): torch is the right runtime, not
            # a failure. Asked for by name, the user should know it was not used.
            (log.warning if runtime != "auto" else log.debug)(
                "embedding runtime %s not used for %s (%s); using torch", name, location, e)
        except Exception as e:  # a failed conversion or load must not stop grading: torch computes the same
            log.warning("embedding runtime %s failed for %s (%s); using torch",
                        name, location, str(e).splitlines()[0] if str(e) else type(e).__name__)
        name = "torch"
    model = load_sentence_model(location, device=device, local_files_only=local_files_only, light=name == "torch")
    model.eval()
    get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return LoadedModel(runtime=TorchRuntime(model, device), tokenizer=model.tokenizer,
                       max_seq_length=int(model.max_seq_length or 256), dim=int(get_dim() or 0), model=model)


def load_onnx(location: str, runtime: str, device: str = "cpu", cache_root: Path | None = None,
              threads: int | None = None) -> LoadedModel:
    """The ONNX runtime for a plain BERT folder, converting it into the cache on first use."""
    if device != "cpu":
        raise Unsupported(f"the ONNX runtimes run on the CPU, not {device!r}")
    spec = inspect_model(location)
    target = onnx_target(spec, runtime, cache_root)
    if not target.ready():
        from grader.embedding.onnx_export import convert

        log.warning("converting the embedding model to %s once (a minute at most), into %s", runtime, target.folder)
        convert(spec, target)
    return LoadedModel(runtime=OnnxRuntime(target, runtime, threads), tokenizer=LightTokenizer(spec.path,
                       spec.max_seq_length), max_seq_length=spec.max_seq_length, dim=spec.hidden_size)


def prepare_onnx(location: str, runtime: str, cache_root: Path | None = None, force: bool = False) -> tuple[Path, bool]:
    """Convert the model folder for an ONNX runtime now (``grader model prepare``): (cache folder, converted?).

    Unlike loading, a model the runtime cannot take is an error here (Unsupported), not a fallback.
    """
    import shutil

    from grader.embedding.onnx_export import convert

    if runtime not in ONNX_RUNTIMES:
        raise ValueError(f"not an ONNX runtime: {runtime!r} (choose {' or '.join(ONNX_RUNTIMES)})")
    spec = inspect_model(location)
    target = onnx_target(spec, runtime, cache_root)
    if target.ready() and not force:
        return target.folder, False
    if force:
        shutil.rmtree(target.folder, ignore_errors=True)
    convert(spec, target)
    return target.folder, True
