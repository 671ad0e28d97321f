"""A BERT sentence encoder (all-MiniLM-L6-v2 and its kin) as an ONNX Runtime graph, built in
memory from the model's ``model.safetensors`` and ``config.json``: no PyTorch, no export step, no
download.

The graph uses ONNX Runtime's fused transformer kernels (``EmbedLayerNormalization``,
``Attention``, ``SkipLayerNormalization``, ``BiasGelu`` from the ``com.microsoft`` domain) and
ends with sentence-transformers' mean pooling and L2 normalisation, so one call returns the
finished vectors. Building it takes about a second; nothing is written to disk.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowforge.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4"}


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a ``.safetensors`` file as float32/int arrays (the format is an 8-byte
    header length, a JSON header of name → dtype, shape, byte range, then the raw data)."""
    import numpy as np

    data = np.memmap(path, dtype=np.uint8, mode="r")
    (size,) = struct.unpack("<Q", bytes(data[:8]))
    header = json.loads(bytes(data[8:8 + size]))
    base = 8 + size
    out: dict[str, np.ndarray] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ConfigError(f"{path}: tensor {name} has dtype {info['dtype']}, which FlowForge cannot read.",
                              hint="Use a float32 or float16 safetensors file.")
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=dtype).reshape(info["shape"])
        out[name] = array.astype(np.float32) if dtype == "<f2" else array
    return out


def build_model(weights: dict[str, np.ndarray], config: dict[str, Any]) -> bytes:
    """The serialized ONNX model: inputs ``input_ids`` and ``attention_mask`` (int64, batch x
    sequence), output ``embedding`` (float32, batch x hidden, unit length)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError("The model is not a plain BERT encoder (gelu, absolute positions); FlowForge's "
                          "ONNX encoder cannot run it.", hint="Configure a BERT-family sentence-transformers model.")
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    def w(name: str) -> np.ndarray:
        key = prefix + name
        if key not in weights:
            raise ConfigError(f"The model's weights have no tensor '{key}'.",
                              hint="The model directory must hold a BERT model.safetensors.")
        return np.ascontiguousarray(weights[key], dtype=np.float32)

    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    # token type 0 for every token: its embedding row is folded into the position embeddings
    position = w("embeddings.position_embeddings.weight") + w("embeddings.token_type_embeddings.weight")[0]
    nodes += [
        helper.make_node("Cast", ["input_ids"], ["ids32"], to=TensorProto.INT32),
        helper.make_node("Cast", ["attention_mask"], ["mask32"], to=TensorProto.INT32),
        helper.make_node("EmbedLayerNormalization",
                         ["ids32", "", const("word", w("embeddings.word_embeddings.weight")),
                          const("position", position), "",
                          const("emb_gamma", w("embeddings.LayerNorm.weight")),
                          const("emb_beta", w("embeddings.LayerNorm.bias"))],
                         ["h0", ""], domain="com.microsoft", epsilon=eps),
    ]
    x = "h0"
    for i in range(layers):
        p = f"encoder.layer.{i}."
        qkv_w = np.concatenate([w(p + f"attention.self.{n}.weight").T for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([w(p + f"attention.self.{n}.bias") for n in ("query", "key", "value")])
        nodes += [
            helper.make_node("Attention", [x, const(f"qkv_w{i}", qkv_w), const(f"qkv_b{i}", qkv_b), "mask32"],
                             [f"att{i}"], domain="com.microsoft", num_heads=heads),
            helper.make_node("MatMul", [f"att{i}", const(f"ao_w{i}", w(p + "attention.output.dense.weight").T)],
                             [f"ao{i}"]),
            helper.make_node("SkipLayerNormalization",
                             [f"ao{i}", x, const(f"ln1_g{i}", w(p + "attention.output.LayerNorm.weight")),
                              const(f"ln1_b{i}", w(p + "attention.output.LayerNorm.bias")),
                              const(f"ao_b{i}", w(p + "attention.output.dense.bias"))],
                             [f"a{i}"], domain="com.microsoft", epsilon=eps),
            helper.make_node("MatMul", [f"a{i}", const(f"in_w{i}", w(p + "intermediate.dense.weight").T)],
                             [f"in{i}"]),
            helper.make_node("BiasGelu", [f"in{i}", const(f"in_b{i}", w(p + "intermediate.dense.bias"))],
                             [f"g{i}"], domain="com.microsoft"),
            helper.make_node("MatMul", [f"g{i}", const(f"out_w{i}", w(p + "output.dense.weight").T)], [f"o{i}"]),
            helper.make_node("SkipLayerNormalization",
                             [f"o{i}", f"a{i}", const(f"ln2_g{i}", w(p + "output.LayerNorm.weight")),
                              const(f"ln2_b{i}", w(p + "output.LayerNorm.bias")),
                              const(f"out_b{i}", w(p + "output.dense.bias"))],
                             [f"h{i + 1}"], domain="com.microsoft", epsilon=eps),
        ]
        x = f"h{i + 1}"
    # mean over the real tokens (sentence-transformers clamps the count at 1e-9), then unit length
    nodes += [
        helper.make_node("Cast", ["attention_mask"], ["maskf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["maskf", const("axis2", np.array([2], np.int64))], ["mask3"]),
        helper.make_node("Mul", [x, "mask3"], ["masked"]),
        helper.make_node("ReduceSum", ["masked", const("axis1", np.array([1], np.int64))], ["summed"], keepdims=0),
        helper.make_node("ReduceSum", ["mask3", "axis1"], ["count"], keepdims=0),
        helper.make_node("Max", ["count", const("tiny", np.array(1e-9, np.float32))], ["count_c"]),
        helper.make_node("Div", ["summed", "count_c"], ["mean"]),
        helper.make_node("LpNormalization", ["mean"], ["embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes, "sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.microsoft", 1)],
                              producer_name="flowforge")
    model.ir_version = 8
    return bytes(model.SerializeToString())
