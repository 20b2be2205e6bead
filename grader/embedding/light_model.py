"""Run a sentence-transformers model of the common BERT shape without importing sentence_transformers.

Importing sentence_transformers (and, through it, transformers' modeling stack: torch.distributed,
torch._dynamo, quantizers, scikit-learn, scipy) costs several seconds of CPU before a single answer is
encoded, which dominates a cold `grader grade`. For a model whose ``modules.json`` is exactly
Transformer(BertModel) -> Pooling(mean) [-> Normalize], the whole computation is small: embeddings,
N encoder layers of self-attention + feed-forward, a masked mean and an L2 norm. This module runs that
computation with the same torch operations, in the same order, as transformers' ``BertModel`` (sdpa
attention) and sentence-transformers' ``Pooling``/``Normalize`` do, so the outputs match theirs (the
test compares them on the bundled model), while importing only torch, tokenizers and safetensors.

Anything else (another architecture, other pooling, prompts, a lower-casing flag, weights not in
float32 safetensors, a hub name rather than a folder) is refused with a reason, and
``load_sentence_model`` falls back to ``SentenceTransformer``.

``LightSentenceModel`` offers the part of the SentenceTransformer API the encoder uses: ``tokenizer``
(callable like a fast tokenizer, with ``pad_token_id``, ``padding_side``, ``all_special_ids``),
``max_seq_length``, ``get_sentence_embedding_dimension()``, ``eval()``, ``to(device)``,
``forward(features) -> features`` with ``token_embeddings`` and ``sentence_embedding``, and ``encode(...)``.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

_TRANSFORMER_TYPES = {"sentence_transformers.models.Transformer", "sentence_transformers.base.modules.Transformer"}
_POOLING_TYPES = {"sentence_transformers.models.Pooling", "sentence_transformers.sentence_transformer.modules.Pooling"}
_NORMALIZE_TYPES = {"sentence_transformers.models.Normalize", "sentence_transformers.base.modules.Normalize"}
_OTHER_POOLING_FLAGS = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)
_BERT_TOKENIZERS = {"BertTokenizer", "BertTokenizerFast"}


class Unsupported(Exception):
    """The model is not of the shape this module reproduces; use SentenceTransformer instead."""


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise Unsupported(f"no {path.name}") from e
    except (OSError, ValueError) as e:
        raise Unsupported(f"unreadable {path.name}: {e}") from e


@dataclass(frozen=True)
class LightSpec:
    """What a model folder must say for the light path, read from its JSON files (no torch needed)."""

    path: Path
    normalize: bool
    max_seq_length: int
    hidden_size: int
    num_layers: int
    num_heads: int
    layer_norm_eps: float
    pad_token_id: int


def inspect_model(path: str | Path) -> LightSpec:
    """The spec of a local sentence-transformers folder, or Unsupported saying why it does not qualify."""
    root = Path(path)
    if not root.is_dir():
        raise Unsupported(f"{path} is not a local folder")
    modules = _read_json(root / "modules.json")
    types = [m.get("type") for m in modules]
    if len(types) not in (2, 3) or types[0] not in _TRANSFORMER_TYPES or types[1] not in _POOLING_TYPES:
        raise Unsupported(f"modules {types} are not Transformer, Pooling[, Normalize]")
    if len(types) == 3 and types[2] not in _NORMALIZE_TYPES:
        raise Unsupported(f"third module {types[2]} is not Normalize")
    if modules[0].get("path", "") not in ("", "."):
        raise Unsupported("the Transformer module is not at the folder root")

    st_config = _read_json(root / "sentence_bert_config.json")
    if st_config.get("do_lower_case"):
        raise Unsupported("sentence_bert_config do_lower_case is set")
    unknown = set(st_config) - {"max_seq_length", "do_lower_case"}
    if unknown:
        raise Unsupported(f"sentence_bert_config has {sorted(unknown)}")
    st_meta_path = root / "config_sentence_transformers.json"
    if st_meta_path.exists():
        meta = _read_json(st_meta_path)
        if meta.get("default_prompt_name") or any(meta.get("prompts", {}).values()):
            raise Unsupported("the model defines prompts")

    pooling = _read_json(root / modules[1].get("path", "1_Pooling") / "config.json")
    mode = pooling.get("pooling_mode")
    mean_only = mode == "mean" if mode is not None else (
        bool(pooling.get("pooling_mode_mean_tokens")) and not any(pooling.get(k) for k in _OTHER_POOLING_FLAGS)
    )
    if not mean_only:
        raise Unsupported(f"pooling is not mean-only: {pooling}")

    config = _read_json(root / "config.json")
    checks = {
        "model_type": config.get("model_type") == "bert",
        "architectures": config.get("architectures") in (None, ["BertModel"]),
        "hidden_act": config.get("hidden_act", "gelu") == "gelu",
        "position_embedding_type": config.get("position_embedding_type", "absolute") == "absolute",
        "is_decoder": not config.get("is_decoder", False),
        "add_cross_attention": not config.get("add_cross_attention", False),
        "chunk_size_feed_forward": not config.get("chunk_size_feed_forward", 0),
        "hidden_size": config.get("hidden_size", 0) % max(config.get("num_attention_heads", 1), 1) == 0,
    }
    failed = [k for k, ok in checks.items() if not ok]
    if failed:
        raise Unsupported(f"config.json is not a plain BertModel ({', '.join(failed)})")

    tok_config = _read_json(root / "tokenizer_config.json")
    if tok_config.get("tokenizer_class") not in _BERT_TOKENIZERS:
        raise Unsupported(f"tokenizer class {tok_config.get('tokenizer_class')!r} is not BERT's")
    if not (root / "tokenizer.json").is_file():
        raise Unsupported("no tokenizer.json")
    if not (root / "model.safetensors").is_file():
        raise Unsupported("no model.safetensors")

    # As sentence-transformers: its max_seq_length, else the tokenizer's limit capped by the positions.
    max_positions = int(config.get("max_position_embeddings", 512))
    max_len = int(st_config.get("max_seq_length") or min(tok_config.get("model_max_length") or max_positions,
                                                         max_positions))
    max_len = min(max_len, max_positions)
    return LightSpec(
        path=root,
        normalize=len(types) == 3,
        max_seq_length=max_len,
        hidden_size=int(config["hidden_size"]),
        num_layers=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        pad_token_id=int(config.get("pad_token_id") or 0),
    )


class LightTokenizer:
    """BERT's fast tokenizer as transformers builds it, on the bare ``tokenizers`` library.

    Called like a transformers tokenizer for the arguments the encoder uses (truncation, max_length,
    padding, return_offsets_mapping, return_tensors="pt" or None).
    """

    padding_side = "right"

    def __init__(self, folder: Path, max_length: int) -> None:
        from tokenizers import Tokenizer, normalizers, processors

        cfg = _read_json(folder / "tokenizer_config.json")
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        # transformers' BertTokenizer rebuilds the normaliser and the [CLS] ... [SEP] template from
        # tokenizer_config.json rather than trusting tokenizer.json; do the same so both agree.
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=cfg.get("tokenize_chinese_chars", True),
            strip_accents=cfg.get("strip_accents"),
            lowercase=cfg.get("do_lower_case", True),
        )
        specials = {k: str(cfg.get(k, d)) for k, d in (("cls_token", "[CLS]"), ("sep_token", "[SEP]"),
                                                       ("pad_token", "[PAD]"), ("unk_token", "[UNK]"),
                                                       ("mask_token", "[MASK]"))}
        ids = {k: tok.token_to_id(v) for k, v in specials.items()}
        if any(v is None for v in ids.values()):
            raise Unsupported(f"special tokens missing from the vocabulary: {specials}")
        cls, sep = specials["cls_token"], specials["sep_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls}:0 $A:0 {sep}:0",
            pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
            special_tokens=[(cls, ids["cls_token"]), (sep, ids["sep_token"])],
        )
        tok.no_padding()
        tok.no_truncation()
        self._tok = tok
        self._lock = threading.Lock()
        self.model_max_length = max_length
        self.pad_token_id: int = ids["pad_token"]
        self.pad_token = specials["pad_token"]
        self.all_special_ids: list[int] = sorted(set(ids.values()))

    def __call__(
        self,
        texts: str | list[str],
        *,
        truncation: bool | str = True,
        max_length: int | None = None,
        padding: bool | str = False,
        return_offsets_mapping: bool = False,
        return_tensors: str | None = None,
        add_special_tokens: bool = True,
    ) -> dict[str, Any]:
        batch = [texts] if isinstance(texts, str) else list(texts)
        limit = max_length if max_length is not None else self.model_max_length
        with self._lock:  # truncation/padding are settings on the shared Rust tokenizer
            if truncation:
                self._tok.enable_truncation(limit)
            else:
                self._tok.no_truncation()
            if padding in (True, "longest"):
                self._tok.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token)
            else:
                self._tok.no_padding()
            encs = self._tok.encode_batch(batch, add_special_tokens=add_special_tokens)
        out: dict[str, Any] = {
            "input_ids": [e.ids for e in encs],
            "token_type_ids": [e.type_ids for e in encs],
            "attention_mask": [e.attention_mask for e in encs],
        }
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encs]
        if return_tensors == "pt":
            import torch

            out = {k: torch.tensor(v, dtype=torch.int64) for k, v in out.items()}
        elif return_tensors is not None:
            raise ValueError(f"return_tensors={return_tensors!r} is not supported")
        if isinstance(texts, str) and return_tensors is None:
            out = {k: v[0] for k, v in out.items()}
        return out


def _load_weights(path: Path, device: str) -> dict[str, torch.Tensor]:
    import torch
    from safetensors.torch import load_file

    raw = load_file(str(path), device=device)
    weights = {}
    for key, value in raw.items():
        # Checkpoints saved from BertForX carry a "bert." prefix on the encoder weights.
        name = key.removeprefix("bert.")
        if value.is_floating_point() and value.dtype != torch.float32:
            raise Unsupported(f"weight {key} is {value.dtype}, not float32")
        weights[name] = value
    return weights


class LightSentenceModel:
    """BertModel -> mean pooling [-> L2 normalise], computed as transformers + sentence-transformers do."""

    def __init__(self, spec: LightSpec, device: str = "cpu") -> None:
        self.spec = spec
        self.device = device
        self.max_seq_length = spec.max_seq_length
        self.tokenizer = LightTokenizer(spec.path, spec.max_seq_length)
        self._w = _load_weights(spec.path / "model.safetensors", device)
        needed = ["embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                  "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                  "embeddings.LayerNorm.bias"]
        for i in range(spec.num_layers):
            p = f"encoder.layer.{i}."
            for part in ("attention.self.query", "attention.self.key", "attention.self.value",
                         "attention.output.dense", "attention.output.LayerNorm", "intermediate.dense",
                         "output.dense", "output.LayerNorm"):
                needed += [p + part + ".weight", p + part + ".bias"]
        missing = [k for k in needed if k not in self._w]
        if missing:
            raise Unsupported(f"weights missing: {missing[:3]}{' ...' if len(missing) > 3 else ''}")
        self._head_dim = spec.hidden_size // spec.num_heads

    # -- the SentenceTransformer surface the encoder uses ------------------------------------------
    def eval(self) -> LightSentenceModel:
        return self

    def to(self, device: str) -> LightSentenceModel:
        self._w = {k: v.to(device) for k, v in self._w.items()}
        self.device = device
        return self

    def get_sentence_embedding_dimension(self) -> int:
        return self.spec.hidden_size

    get_embedding_dimension = get_sentence_embedding_dimension

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        """Adds ``token_embeddings`` (B, L, H) and ``sentence_embedding`` (B, H) to ``features``."""
        input_ids = features["input_ids"]
        attention_mask = features.get("attention_mask")
        if attention_mask is None:
            import torch

            attention_mask = torch.ones_like(input_ids)
        tokens = self._bert(input_ids, features.get("token_type_ids"), attention_mask)
        features["token_embeddings"] = tokens
        features["sentence_embedding"] = self._pool(tokens, attention_mask)
        return features

    __call__ = forward

    def encode(
        self,
        sentences: str | list[str],
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        **_: Any,
    ) -> Any:
        """Sentence embeddings the way SentenceTransformer.encode computes them (same batches, same order)."""
        import torch

        single = isinstance(sentences, str)
        texts = [sentences] if single else list(sentences)
        # Same batching as SentenceTransformer.encode: padding widths, and so the float results, match.
        order = np.argsort([-len(t) for t in texts])
        chunks: list[torch.Tensor] = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = [texts[i] for i in order[start : start + batch_size]]
                feats = self.tokenizer(batch, truncation=True, max_length=self.max_seq_length, padding=True,
                                       return_tensors="pt")
                feats = {k: v.to(self.device) for k, v in feats.items()}
                emb = self.forward(feats)["sentence_embedding"]
                if normalize_embeddings:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                chunks.extend(emb.cpu() if convert_to_numpy else emb)
        ordered = [chunks[i] for i in np.argsort(order)]
        stacked = torch.stack(ordered) if ordered else torch.zeros((0, self.spec.hidden_size))
        result: Any = stacked
        if convert_to_numpy and not convert_to_tensor:
            result = stacked.float().numpy()
        return result[0] if single else result

    # -- the computation -----------------------------------------------------------------------------
    def _bert(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
              attention_mask: torch.Tensor) -> torch.Tensor:
        import torch
        from torch.nn import functional as F

        w, spec = self._w, self.spec
        batch, length = input_ids.shape
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        position_ids = torch.arange(length, device=input_ids.device).unsqueeze(0)
        # BertEmbeddings: (word + token type) + position, then LayerNorm; the order fixes the float sums.
        hidden = F.embedding(input_ids, w["embeddings.word_embeddings.weight"], spec.pad_token_id)
        hidden = hidden + F.embedding(token_type_ids, w["embeddings.token_type_embeddings.weight"])
        hidden = hidden + F.embedding(position_ids, w["embeddings.position_embeddings.weight"])
        hidden = self._layer_norm(hidden, "embeddings.LayerNorm")

        # transformers' sdpa mask: None without padding (so the same kernel runs), else a boolean
        # (B, 1, L, L) "may attend" mask.
        mask: torch.Tensor | None = None
        if not bool(attention_mask.all()):
            mask = attention_mask.bool()[:, None, None, :].expand(batch, 1, length, length)
        shape = (batch, length, -1, self._head_dim)
        scale = self._head_dim**-0.5
        for i in range(spec.num_layers):
            p = f"encoder.layer.{i}."
            q = self._linear(hidden, p + "attention.self.query").view(shape).transpose(1, 2)
            k = self._linear(hidden, p + "attention.self.key").view(shape).transpose(1, 2)
            v = self._linear(hidden, p + "attention.self.value").view(shape).transpose(1, 2)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, scale=scale, is_causal=False)
            att = att.reshape(att.shape[0], -1, length, v.shape[-1]).transpose(1, 2).contiguous()
            att = att.reshape(batch, length, -1).contiguous()
            att = self._layer_norm(self._linear(att, p + "attention.output.dense") + hidden,
                                   p + "attention.output.LayerNorm")
            mid = F.gelu(self._linear(att, p + "intermediate.dense"))
            hidden = self._layer_norm(self._linear(mid, p + "output.dense") + att, p + "output.LayerNorm")
        return hidden

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        from torch.nn import functional as F

        return F.linear(x, self._w[name + ".weight"], self._w[name + ".bias"])

    def _layer_norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        from torch.nn import functional as F

        return F.layer_norm(x, (self.spec.hidden_size,), self._w[name + ".weight"], self._w[name + ".bias"],
                            self.spec.layer_norm_eps)

    def _pool(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        import torch
        from torch.nn import functional as F

        # sentence-transformers' Pooling(mean): masked sum over tokens / clamped token count.
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        summed = (tokens * mask).sum(dim=1, dtype=tokens.dtype)
        count = torch.clamp(mask.sum(dim=1, dtype=tokens.dtype), min=1e-9)
        pooled = (summed / count).to(tokens.dtype)
        if self.spec.normalize:
            pooled = F.normalize(pooled, p=2, dim=-1)
        return pooled


def load_light_model(location: str | Path, device: str = "cpu") -> LightSentenceModel:
    """The light model for a local folder, or Unsupported (with the reason) when it does not qualify."""
    return LightSentenceModel(inspect_model(location), device=device)


def load_sentence_model(location: str, device: str = "cpu", local_files_only: bool = True,
                        light: bool = True) -> Any:
    """A LightSentenceModel when the folder qualifies, else a SentenceTransformer (same call as before).

    Any failure on the light path falls back too, so a folder the light loader cannot read gets
    SentenceTransformer's own behaviour and error messages, never a new one.
    """
    if light:
        try:
            return load_light_model(location, device=device)
        except Exception as e:  # the fallback is the complete, slower implementation
            logging.getLogger(__name__).debug("light model not used for %s: %s", location, e)
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(location, device=device, local_files_only=local_files_only)
