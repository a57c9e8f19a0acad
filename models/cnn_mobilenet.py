"""cnn-mobilenet: a MobileNetV1-style CNN (width 0.5, 128x128 input) with seeded random weights.

It is a throughput benchmark model, not a classifier: the weights are He-initialised random numbers
(numpy seed 1234), so its predictions mean nothing. BatchNorm is folded into the convolutions (conv
with bias), which is the form a trained MobileNet takes after export for inference.

Graph (opset 13): input FP32 [N,3,128,128] -> Conv3x3/2 (16) + ReLU6 -> 13 depthwise-separable blocks
(depthwise Conv3x3 group=C + ReLU6, pointwise Conv1x1 + ReLU6) -> GlobalAveragePool -> Flatten ->
Gemm (512 -> 10) -> Softmax -> output `probabilities` FP32 [N,10].
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED = 1234
IMAGE = 128
CLASSES = 10
OPSET = 13
STEM = 16
# (output channels, stride) of each depthwise-separable block: MobileNetV1 with width multiplier 0.5.
BLOCKS = [(32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (256, 2)] + [(256, 1)] * 5 + [(512, 2), (512, 1)]


def _weights() -> list[dict]:
    """Deterministic layer parameters: He-normal conv weights, small biases (folded BN shift)."""
    rng = np.random.default_rng(SEED)
    layers = []

    def conv(cin_per_group: int, cout: int, k: int, stride: int, group: int, name: str) -> None:
        fan_in = cin_per_group * k * k
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(cout, cin_per_group, k, k)).astype(np.float32)
        b = rng.normal(0.0, 0.05, size=(cout,)).astype(np.float32)
        layers.append({"name": name, "w": w, "b": b, "stride": stride, "group": group, "k": k})

    conv(3, STEM, 3, 2, 1, "stem")
    channels = STEM
    for i, (cout, stride) in enumerate(BLOCKS):
        conv(1, channels, 3, stride, channels, f"block{i}_dw")
        conv(channels, cout, 1, 1, 1, f"block{i}_pw")
        channels = cout
    # Pooled random-weight features are small (~0.15), so the classifier is scaled up to give logits a
    # spread of a few units: the softmax is then neither uniform nor saturated.
    fc_w = rng.normal(0.0, 8.0 / np.sqrt(channels), size=(CLASSES, channels)).astype(np.float32)
    fc_b = np.zeros((CLASSES,), dtype=np.float32)
    layers.append({"name": "fc", "w": fc_w, "b": fc_b})
    return layers


def build() -> tuple[onnx.ModelProto, dict]:
    """Returns the ONNX model and facts about it (parameter count, multiply-accumulates per image)."""
    layers = _weights()
    nodes, inits = [], []
    relu6_min = numpy_helper.from_array(np.array(0.0, dtype=np.float32), "relu6_min")
    relu6_max = numpy_helper.from_array(np.array(6.0, dtype=np.float32), "relu6_max")
    inits += [relu6_min, relu6_max]
    x, size, macs, params = "input", IMAGE, 0, 0
    for layer in layers[:-1]:
        n, w, b = layer["name"], layer["w"], layer["b"]
        inits += [numpy_helper.from_array(w, f"{n}_w"), numpy_helper.from_array(b, f"{n}_b")]
        k, stride = layer["k"], layer["stride"]
        pad = k // 2
        nodes.append(
            helper.make_node(
                "Conv", [x, f"{n}_w", f"{n}_b"], [f"{n}_conv"], name=f"{n}_conv",
                kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=layer["group"],
            )
        )
        nodes.append(helper.make_node("Clip", [f"{n}_conv", "relu6_min", "relu6_max"], [f"{n}_out"], name=f"{n}_relu6"))
        size = (size + 2 * pad - k) // stride + 1
        macs += w.size * size * size
        params += w.size + b.size
        x = f"{n}_out"
    fc = layers[-1]
    inits += [numpy_helper.from_array(fc["w"], "fc_w"), numpy_helper.from_array(fc["b"], "fc_b")]
    nodes += [
        helper.make_node("GlobalAveragePool", [x], ["pooled"], name="pool"),
        helper.make_node("Flatten", ["pooled"], ["features"], name="flatten", axis=1),
        helper.make_node("Gemm", ["features", "fc_w", "fc_b"], ["logits"], name="fc", transB=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], name="softmax", axis=-1),
    ]
    macs += fc["w"].size
    params += fc["w"].size + fc["b"].size
    graph = helper.make_graph(
        nodes,
        "cnn_mobilenet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, IMAGE, IMAGE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", CLASSES])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="inflow-models",
        producer_version="1",
        doc_string="MobileNetV1-style CNN (width 0.5) with seeded random weights, for throughput benchmarks only.",
    )
    model.ir_version = 7  # IR 7 covers opset 13; readable by any onnxruntime since 1.7
    return model, {"parameters": int(params), "macs_per_image": int(macs), "layers": layers}


def reference_forward(layers: list[dict], x: np.ndarray) -> np.ndarray:
    """Independent numpy (float64) forward pass, to check that the ONNX graph is the intended network."""
    h = x.astype(np.float64)
    for layer in layers[:-1]:
        w, b, k, s, g = layer["w"].astype(np.float64), layer["b"], layer["k"], layer["stride"], layer["group"]
        pad = k // 2
        hp = np.pad(h, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        out_size = (h.shape[2] + 2 * pad - k) // s + 1
        out = np.zeros((h.shape[0], w.shape[0], out_size, out_size))
        for i in range(k):
            for j in range(k):
                patch = hp[:, :, i : i + s * out_size : s, j : j + s * out_size : s]
                if g == 1:
                    out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
                else:  # depthwise: one filter per channel
                    out += patch * w[None, :, 0, i, j, None, None]
        h = np.clip(out + b[None, :, None, None], 0.0, 6.0)
    fc = layers[-1]
    logits = h.mean(axis=(2, 3)) @ fc["w"].T.astype(np.float64) + fc["b"]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sample_images(count: int = 2) -> np.ndarray:
    """Deterministic pseudo-images in [-1, 1]: multiples of 1/32 (short JSON), each image with its own
    per-channel brightness and contrast so that the images get clearly different outputs."""
    rng = np.random.default_rng(SEED + 1)
    offset = rng.uniform(-0.5, 0.5, size=(count, 3, 1, 1))
    contrast = rng.uniform(0.2, 1.0, size=(count, 3, 1, 1))
    noise = rng.uniform(-1.0, 1.0, size=(count, 3, IMAGE, IMAGE))
    return (np.clip(np.round(32 * (offset + contrast * noise)), -32, 32) / 32.0).astype(np.float32)
