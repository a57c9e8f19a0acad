"""Writes test/fixtures/monitoring/digits-mlp-shuffled/model.onnx: digits-mlp with its output
layer's weights shuffled (fixed seed) — the same signature, deliberately worse answers. The guarded
rollout test (test/monitoring/rollout.test.ts) rolls it out and expects its guards to roll it back.
    /tmp/v/bin/pip install -r scripts/monitoring/requirements.txt && /tmp/v/bin/python scripts/monitoring/shuffle-weights.py
"""
import pathlib

import numpy as np
import onnx
from onnx import numpy_helper

root = pathlib.Path(__file__).resolve().parents[2]
model = onnx.load(root / "models" / "repository" / "digits-mlp" / "1" / "model.onnx")
rng = np.random.default_rng(18)
for i, t in enumerate(model.graph.initializer):
    if t.name == "coefficient1":
        w = numpy_helper.to_array(t)
        shuffled = rng.permutation(w.reshape(-1)).reshape(w.shape)
        model.graph.initializer[i].CopyFrom(numpy_helper.from_array(shuffled, t.name))
out = root / "test" / "fixtures" / "monitoring" / "digits-mlp-shuffled" / "model.onnx"
out.parent.mkdir(parents=True, exist_ok=True)
onnx.save(model, out)
print(f"wrote {out}")
