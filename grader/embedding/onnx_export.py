"""Convert a plain BERT sentence model (the bundled all-MiniLM-L6-v2) to ONNX, once, into a cache folder.

This is the only part of the ONNX runtime that imports torch (and the ``onnx`` package): it runs on first
use of an ONNX runtime, or ahead of time with ``grader model prepare``; grading afterwards loads the file
with onnxruntime alone (grader/embedding/onnx_runtime.py).

The graph is the light model's computation (grader/embedding/light_model.py: the same weights, the same
operations) with two differences that do not change the numbers: attention is written out as
``softmax(q·kᵀ·scale + mask) · v`` with an additive mask on every batch (the pattern onnxruntime's BERT
optimizer recognises and fuses into one Attention node), and the graph ends at the token embeddings,
so the sentence embedding is the same masked mean + L2 norm as every other runtime, computed by the
caller. For "onnx-int8" the matrix products' weights are stored as int8 per output channel (dynamic
quantization: activations are quantized per batch at run time, so a batch's neighbours shift an answer's
embedding slightly). Smoothing the activations first (SmoothQuant, alpha 0.5-1.0) was tried: best at 0.7,
it raised the mean cosine to torch on Mohler's answers from 0.9933 to 0.9969 but did not reduce the
per-answer score differences (`grader bench agreement`: max 0.52 vs 0.48), so it is not done.

The file is written to a temporary folder beside the target and renamed into place, so two processes
converting at once never leave a half-written model behind.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from grader.embedding.light_model import LightSpec
from grader.embedding.onnx_runtime import MODEL_FILE, OnnxTarget

OPSET = 17


def _module(spec: LightSpec) -> Any:
    """A torch.nn.Module computing BertModel's last hidden state with the light model's weights."""
    import torch
    from torch.nn import functional as F

    from grader.embedding.light_model import LightSentenceModel

    light = LightSentenceModel(spec, device="cpu")
    weights = light._w  # the checked float32 state dict, "bert." prefix already removed

    class Bert(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # Registered as buffers so the exporter stores them as initializers.
            self._names = {name: f"w{i}" for i, name in enumerate(weights)}
            for name, value in weights.items():
                self.register_buffer(self._names[name], value.detach().clone())

        def w(self, name: str) -> torch.Tensor:
            return getattr(self, self._names[name])

        def linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
            return F.linear(x, self.w(name + ".weight"), self.w(name + ".bias"))

        def norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
            return F.layer_norm(x, (spec.hidden_size,), self.w(name + ".weight"), self.w(name + ".bias"),
                                spec.layer_norm_eps)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor) -> torch.Tensor:
            heads, head_dim = spec.num_heads, spec.hidden_size // spec.num_heads
            length = input_ids.shape[1]
            positions = torch.arange(length, dtype=torch.int64).unsqueeze(0)
            hidden = F.embedding(input_ids, self.w("embeddings.word_embeddings.weight"))
            hidden = hidden + F.embedding(token_type_ids, self.w("embeddings.token_type_embeddings.weight"))
            hidden = hidden + F.embedding(positions, self.w("embeddings.position_embeddings.weight"))
            hidden = self.norm(hidden, "embeddings.LayerNorm")
            # The classic BERT extended mask: 0 where a token may be attended to, a large negative elsewhere.
            extended = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min

            def split(x: torch.Tensor) -> torch.Tensor:
                return x.view(x.shape[0], x.shape[1], heads, head_dim).permute(0, 2, 1, 3)

            for i in range(spec.num_layers):
                p = f"encoder.layer.{i}."
                q = split(self.linear(hidden, p + "attention.self.query"))
                k = split(self.linear(hidden, p + "attention.self.key"))
                v = split(self.linear(hidden, p + "attention.self.value"))
                scores = torch.matmul(q, k.transpose(-1, -2)) / (head_dim**0.5) + extended
                context = torch.matmul(torch.softmax(scores, dim=-1), v).permute(0, 2, 1, 3).contiguous()
                context = context.view(context.shape[0], context.shape[1], spec.hidden_size)
                att = self.norm(self.linear(context, p + "attention.output.dense") + hidden,
                                p + "attention.output.LayerNorm")
                mid = F.gelu(self.linear(att, p + "intermediate.dense"))
                hidden = self.norm(self.linear(mid, p + "output.dense") + att, p + "output.LayerNorm")
            return hidden

    return Bert().eval()


def _export(spec: LightSpec, path: Path) -> None:
    import torch

    module = _module(spec)
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]], dtype=torch.int64)
    mask = (ids != 0).to(torch.int64)
    types = torch.zeros_like(ids)
    axes = {0: "batch", 1: "length"}
    with torch.inference_mode():
        # The legacy (TorchScript) exporter: the dynamo one needs onnxscript and gains nothing here.
        torch.onnx.export(
            module, (ids, mask, types), str(path), input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["token_embeddings"], opset_version=OPSET, do_constant_folding=True, dynamo=False,
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                          "token_embeddings": axes},
        )


def _optimize(spec: LightSpec, src: Path, dst: Path) -> dict[str, int]:
    """onnxruntime's offline BERT fusions (Attention, SkipLayerNorm, BiasGelu, ...); returns node counts."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(src), model_type="bert", num_heads=spec.num_heads, hidden_size=spec.hidden_size,
                           opt_level=0, use_gpu=False)
    model.save_model_to_file(str(dst))
    counts: dict[str, int] = {}
    for node in model.model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _quantize(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    handlers, disabled = list(root.handlers), root.manager.disable
    logging.disable(logging.WARNING)  # its advice ("run pre-processing") is for its developers, not ours
    try:
        # Per-channel weight scales: per-tensor ones cost 5x the error (mean cosine to torch 0.961 vs
        # 0.993 on Mohler's answers) at the same speed. The fused ops are in onnxruntime's own domain,
        # where shape inference gives no types: say float.
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"],
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        # The quantizer logs advice through the root logger, which installs a handler on it as a side effect.
        root.handlers[:] = handlers
        logging.disable(disabled)


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def convert(spec: LightSpec, target: OnnxTarget) -> Path:
    """Write target.folder (model.onnx + manifest.json) from the model folder; returns the folder."""
    target.folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.folder.name}-", dir=target.folder.parent))
    try:
        raw, fused = work / "exported.onnx", work / "fused.onnx"
        _export(spec, raw)
        ops = _optimize(spec, raw, fused)
        if target.quantized:
            _quantize(fused, work / MODEL_FILE)
        else:
            fused.rename(work / MODEL_FILE)
        for leftover in (raw, fused):
            leftover.unlink(missing_ok=True)
        work.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any other
        manifest = {**target.key, "built_with": _versions(), "fused_ops": ops}
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        try:
            os.replace(work, target.folder)
        except OSError:
            if not (target.folder / MODEL_FILE).is_file():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target.folder
