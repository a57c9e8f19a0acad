"""Shared helpers for build.py: repository layout, ONNX session/IO, reference-sample JSON."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parent
REPOSITORY = ROOT / "repository"
SAMPLES = ROOT / "samples"

# numpy dtype -> Open Inference Protocol datatype name.
NUMPY_DATATYPE = {
    np.dtype(np.bool_): "BOOL",
    np.dtype(np.uint8): "UINT8",
    np.dtype(np.uint16): "UINT16",
    np.dtype(np.uint32): "UINT32",
    np.dtype(np.uint64): "UINT64",
    np.dtype(np.int8): "INT8",
    np.dtype(np.int16): "INT16",
    np.dtype(np.int32): "INT32",
    np.dtype(np.int64): "INT64",
    np.dtype(np.float16): "FP16",
    np.dtype(np.float32): "FP32",
    np.dtype(np.float64): "FP64",
}

CONFIG_TEMPLATE = """platform: onnx
versionPolicy: {{ latest: 1 }}
batching: {{ maxBatchSize: {max_batch}, maxDelayMicros: 500 }}
runtime: {{ file: model.onnx }}
"""


def name_batch_dim(model: onnx.ModelProto, dim_name: str = "N") -> None:
    """Give the unnamed leading (batch) dimension of every graph input/output a symbolic name.

    skl2onnx writes `[None, 64]` as a dim with neither value nor name; a named dim reads more
    clearly in metadata (`["N", 64]`) and is equivalent for every runtime.
    """
    for value in list(model.graph.input) + list(model.graph.output):
        if not value.type.HasField("tensor_type"):
            continue  # seq(map(...)) outputs of ZipMap have no tensor shape
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value") and not dims[0].dim_param:
            dims[0].dim_param = dim_name


def save_model(name: str, model: onnx.ModelProto, max_batch: int, version: int = 1) -> Path:
    """Checks `model` and writes it as repository/<name>/<version>/model.onnx plus config.yaml."""
    onnx.checker.check_model(model, full_check=True)
    model_dir = REPOSITORY / name
    (model_dir / str(version)).mkdir(parents=True, exist_ok=True)
    path = model_dir / str(version) / "model.onnx"
    path.write_bytes(model.SerializeToString())
    (model_dir / "config.yaml").write_text(CONFIG_TEMPLATE.format(max_batch=max_batch))
    return path


def session(path: Path, optimized: bool = True) -> ort.InferenceSession:
    """A single-threaded CPU session (single thread: reproducible reductions, fair on a shared box)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def io_signature(sess: ort.InferenceSession) -> dict:
    """Input/output names, ONNX types and shapes as onnxruntime reports them."""

    def describe(args):
        return [{"name": a.name, "type": a.type, "shape": list(a.shape)} for a in args]

    return {"inputs": describe(sess.get_inputs()), "outputs": describe(sess.get_outputs())}


def float32_number(value: np.float32) -> float:
    """The shortest decimal that reads back (via float64, as JavaScript does) as exactly `value`."""
    short = float(str(np.float32(value)))
    if np.float32(short) == np.float32(value):
        return short
    return float(np.float32(value))  # exact float64 image of the float32: always round-trips


def tensor_json(array: np.ndarray) -> dict:
    """{datatype, shape, data} with data flattened row-major, as in the OIP JSON tensor format."""
    datatype = NUMPY_DATATYPE[array.dtype]
    flat = array.reshape(-1)
    if array.dtype == np.float32:
        data = [float32_number(v) for v in flat]
        assert np.array_equal(np.asarray(data, dtype=np.float32), flat), "FP32 JSON round trip"
    elif array.dtype.kind == "f":
        data = [float(v) for v in flat]
    elif array.dtype == np.bool_:
        data = [bool(v) for v in flat]
    else:
        data = [int(v) for v in flat]
    return {"datatype": datatype, "shape": list(array.shape), "data": data}


def write_sample(name: str, inputs: dict[str, np.ndarray], outputs: dict[str, dict]) -> Path:
    """Writes samples/<name>.json. `outputs` values are already JSON-ready dicts."""
    SAMPLES.mkdir(parents=True, exist_ok=True)
    path = SAMPLES / f"{name}.json"
    body = {"inputs": {k: tensor_json(v) for k, v in inputs.items()}, "outputs": outputs}
    path.write_text(json.dumps(body, separators=(",", ":")) + "\n")
    return path


def sample_from_session(name: str, sess: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> Path:
    """Runs `sess` on `inputs` and writes the tensors it returns as the reference sample."""
    names = [o.name for o in sess.get_outputs()]
    results = sess.run(names, inputs)
    outputs = {n: tensor_json(np.asarray(r)) for n, r in zip(names, results)}
    return write_sample(name, inputs, outputs)


def batch_consistency(sess: ort.InferenceSession, inputs: dict[str, np.ndarray]) -> dict:
    """How much each row's outputs change when it is run alone instead of inside the batch.

    Matters to the dynamic batcher: a non-zero float difference means batched and unbatched
    answers can differ in the last bits (different GEMM blocking), so comparisons need a tolerance.
    """
    names = [o.name for o in sess.get_outputs() if o.type.startswith("tensor(")]
    batch = sess.run(names, inputs)
    rows = len(next(iter(inputs.values())))
    float_diff, labels_differing = 0.0, 0
    for i in range(rows):
        alone = sess.run(names, {k: v[i : i + 1] for k, v in inputs.items()})
        for b, a in zip(batch, alone):
            if b.dtype.kind == "f":
                float_diff = max(float_diff, float(np.max(np.abs(b[i : i + 1] - a))))
            else:
                labels_differing += int(np.sum(b[i : i + 1] != a))
    return {"max_abs_float_diff": float32_number(float_diff), "int_values_differing": labels_differing}


def file_facts(path: Path) -> dict:
    data = path.read_bytes()
    return {"path": str(path.relative_to(ROOT)), "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
