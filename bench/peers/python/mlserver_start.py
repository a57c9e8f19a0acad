"""Writes an MLServer folder (settings.json + model-settings.json) for one ONNX model and execs
`mlserver start` on it. Defaults otherwise (parallel_workers 1: inference in one worker process).

    python mlserver_start.py <http-port> <grpc-port> <metrics-port> <max-batch: 64|1> <name>=<model.onnx> ...
"""

import json
import os
import sys
import tempfile

http_port, grpc_port, metrics_port, batch = sys.argv[1:5]
batch = int(batch)
root = tempfile.mkdtemp(prefix="inflow-bench-mlserver-")
with open(os.path.join(root, "settings.json"), "w") as f:
    json.dump({"http_port": int(http_port), "grpc_port": int(grpc_port), "metrics_port": int(metrics_port), "debug": False}, f)
for spec in sys.argv[5:]:
    name, model = spec.split("=", 1)
    os.makedirs(os.path.join(root, name))
    with open(os.path.join(root, name, "model-settings.json"), "w") as f:
        settings = {"name": name, "implementation": "mlserver_onnx.OnnxRuntime", "parameters": {"uri": os.path.abspath(model)}}
        if batch > 1:
            # Adaptive batching, the same limits as inflow's batcher in the comparison: 64 rows, 0.5 ms.
            settings.update({"max_batch_size": batch, "max_batch_time": 0.0005})
        json.dump(settings, f)
os.environ["PYTHONPATH"] = os.path.dirname(os.path.abspath(__file__)) + os.pathsep + os.environ.get("PYTHONPATH", "")
mlserver = os.path.join(os.path.dirname(sys.executable), "mlserver")
os.execv(mlserver, [mlserver, "start", root])
