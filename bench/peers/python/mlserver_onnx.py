"""MLServer custom runtime on Python onnxruntime — what MLServer's users write for an ONNX model
(MLServer has no built-in ONNX runtime). Loaded by `mlserver start` from model-settings.json:

    {"name": "digits-mlp", "implementation": "mlserver_onnx.OnnxRuntime",
     "parameters": {"uri": "/path/model.onnx"}, "max_batch_size": 64, "max_batch_time": 0.0005}

The session gets one intra-op thread, like every server in the comparison.
"""

import numpy as np
import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(self.settings.parameters.uri, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype(np.float32, copy=False)
        results = self._session.run(self._outputs, {self._input: x})
        return InferenceResponse(
            model_name=self.name,
            outputs=[NumpyCodec.encode_output(name=n, payload=r) for n, r in zip(self._outputs, results)],
        )
