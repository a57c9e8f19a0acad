"""Converts one signature of a TensorFlow SavedModel to ONNX for `inflow models import --savedmodel`.

    python models-import.py <savedmodel-dir> <out.onnx> <reference.json> [--signature serving_default] [--opset 17] [--rows 4]

Keeps the signature's input and output names (the keys TF Serving clients send and read) as the
ONNX graph's input and output names, and writes reference.json: sample inputs and TensorFlow's own
outputs for them ({"inputs"|"outputs": {name: {"datatype", "shape", "data"}}}), which the caller
compares with inflow's runtime on the converted model. Prints a JSON summary on its last line;
errors go to stderr as one line starting "error: " and exit 2.
"""
import argparse
import json
import sys

import numpy as np

OIP = {"float32": "FP32", "float64": "FP64", "float16": "FP16", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
       "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64", "bool": "BOOL", "string": "BYTES"}


def fail(message):
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def sample(spec, rows, rng):
    """Sample input for a TensorSpec: unknown dims are `rows` (the first, the batch) or 1."""
    shape = [(rows if i == 0 else 1) if d is None else d for i, d in enumerate(spec.shape.as_list())]
    dtype = spec.dtype.name
    if dtype == "string":
        return np.array([b"a"] * int(np.prod(shape)), dtype=object).reshape(shape)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(bool)
    if spec.dtype.is_integer:
        return rng.integers(0, 10, size=shape).astype(dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def tensor_json(array):
    array = np.asarray(array)
    name = "string" if array.dtype.kind in ("O", "S", "U") else array.dtype.name
    if name not in OIP:
        fail(f"dtype {array.dtype} has no Open Inference Protocol datatype")
    data = [x.decode() if isinstance(x, bytes) else x for x in array.reshape(-1).tolist()]
    return {"datatype": OIP[name], "shape": list(array.shape), "data": data}


def rename(graph, old, new, is_input):
    """Gives a graph input or output the signature's name (tf2onnx usually keeps it already)."""
    from onnx import helper

    if old == new:
        return
    if is_input:
        for node in graph.node:
            node.input[:] = [new if i == old else i for i in node.input]
        for value in graph.input:
            if value.name == old:
                value.name = new
    else:
        graph.node.append(helper.make_node("Identity", [old], [new], name=f"signature_output_{new}"))
        for value in graph.output:
            if value.name == old:
                value.name = new


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("savedmodel")
    ap.add_argument("onnx")
    ap.add_argument("reference")
    ap.add_argument("--signature", default="serving_default")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--rows", type=int, default=4)
    a = ap.parse_args()

    import tensorflow as tf
    import tf2onnx

    try:
        loaded = tf.saved_model.load(a.savedmodel)
    except Exception as error:  # noqa: BLE001 - TensorFlow raises many kinds; the message says which
        fail(f"cannot load the SavedModel {a.savedmodel}: {str(error).splitlines()[0]}")
    if a.signature not in loaded.signatures:
        fail(f"the SavedModel has no signature \"{a.signature}\"; it has: {', '.join(loaded.signatures.keys()) or 'none'} (--signature)")
    fn = loaded.signatures[a.signature]
    args, inputs = fn.structured_input_signature
    if args:
        fail(f"signature \"{a.signature}\" takes positional arguments; expected named inputs (a serving signature)")
    if not isinstance(fn.structured_outputs, dict):
        fail(f"signature \"{a.signature}\" returns {type(fn.structured_outputs).__name__}; expected a dict of named outputs")
    keys = list(inputs.keys())
    specs = [tf.TensorSpec(inputs[k].shape, inputs[k].dtype, name=k) for k in keys]

    @tf.function(input_signature=specs)
    def call(*values):
        return fn(**dict(zip(keys, values)))

    model, _ = tf2onnx.convert.from_function(call, input_signature=specs, opset=a.opset)
    graph = model.graph
    for value, key in zip(list(graph.input), keys):
        rename(graph, value.name, key, True)
    # The graph's outputs follow the flattened output dict: its keys in sorted order.
    out_keys = sorted(fn.structured_outputs.keys())
    for value, key in zip(list(graph.output), out_keys):
        rename(graph, value.name, key, False)
    with open(a.onnx, "wb") as f:
        f.write(model.SerializeToString())

    rng = np.random.default_rng(20261206)
    feed = {k: sample(inputs[k], a.rows, rng) for k in keys}
    outputs = fn(**{k: tf.constant(v) for k, v in feed.items()})
    reference = {
        "inputs": {k: tensor_json(v) for k, v in feed.items()},
        "outputs": {k: tensor_json(v.numpy()) for k, v in sorted(outputs.items())},
    }
    with open(a.reference, "w") as f:
        json.dump(reference, f)
    spec = lambda name, s: {"name": name, "datatype": OIP.get(s.dtype.name, s.dtype.name), "shape": [-1 if d is None else d for d in s.shape.as_list()]}
    print(json.dumps({
        "signature": a.signature,
        "inputs": [spec(k, inputs[k]) for k in keys],
        "outputs": [spec(k, fn.structured_outputs[k]) for k in out_keys],
        "tensorflow": tf.__version__,
        "tf2onnx": tf2onnx.__version__,
        "opset": a.opset,
    }))


if __name__ == "__main__":
    main()
