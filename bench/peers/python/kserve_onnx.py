"""KServe's Python model server with a custom model on onnxruntime (KServe's documented way to
serve a model it has no runtime for). Serves the V1 protocol (/v1/models/<name>:predict) and the
V2 / Open Inference Protocol (REST /v2/models/<name>/infer and gRPC ModelInfer).

    python kserve_onnx.py <http-port> <grpc-port> <name>=<model.onnx> ...

One uvicorn worker, the session with one intra-op thread (every server in the comparison gets
the same); request logging off so it is not measured.
"""

import json
import logging
import sys
import uuid

import kserve
import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse

DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.int64): "INT64"}


class OnnxModel(kserve.Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self._path = path
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(self._path, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None, response_headers=None):
        if isinstance(payload, InferRequest):
            x = payload.inputs[0].as_numpy().astype(np.float32, copy=False)
            results = self._session.run(self._outputs, {self._input: x})
            outputs = []
            for name, r in zip(self._outputs, results):
                out = InferOutput(name=name, shape=list(r.shape), datatype=DATATYPES[r.dtype])
                out.set_data_from_numpy(r, binary_data=False)
                outputs.append(out)
            return InferResponse(response_id=payload.id or str(uuid.uuid4()), model_name=self.name, infer_outputs=outputs)
        # V1: {"instances": [[...], ...]} → {"predictions": [{"label": l, "probabilities": [...]}, ...]}
        if isinstance(payload, (bytes, str)):  # a body sent without Content-Type: application/json
            payload = json.loads(payload)
        x = np.asarray(payload["instances"], dtype=np.float32)
        label, probabilities = self._session.run(self._outputs, {self._input: x})
        return {"predictions": [{"label": int(l), "probabilities": p.tolist()} for l, p in zip(label.reshape(-1), probabilities)]}


if __name__ == "__main__":
    http_port, grpc_port = sys.argv[1:3]
    models = [OnnxModel(*spec.split("=", 1)) for spec in sys.argv[3:]]
    server = kserve.ModelServer(http_port=int(http_port), grpc_port=int(grpc_port), workers=1, enable_latency_logging=False)
    # After the server configured logging: no per-request access or trace lines (logging is not what is measured).
    for logger in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(logger).setLevel(logging.WARNING)
    server.start(models)
