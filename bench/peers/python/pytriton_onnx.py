"""Triton Inference Server through PyTriton: the Triton server bundled in `nvidia-pytriton` serves
an infer function that runs onnxruntime (CPU), with Triton's dynamic batcher on (64 rows, 0.5 ms,
the same limits as inflow's batcher in the comparison). Triton serves the Open Inference Protocol
over REST (JSON and binary tensors) and gRPC.

    python pytriton_onnx.py <http-port> <grpc-port> <metrics-port> <max-batch: 64|1> <name>=<model.onnx> ...
"""

import logging
import os
import sys
import sysconfig

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

http_port, grpc_port, metrics_port, max_batch = sys.argv[1:5]
max_batch = int(max_batch)
logging.basicConfig(level=logging.WARNING)
# Triton's Python-backend stub links libpython3.X.so by soname: on a machine with a distro Python of
# the same minor version (Debian's 3.11.2 here) it would load that one under this interpreter's
# stdlib (pyenv 3.11.7) and fail in multiprocessing. Point it at this interpreter's own libpython.
os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [sysconfig.get_config_var("LIBDIR"), os.environ.get("LD_LIBRARY_PATH")]))


def infer_function(path: str):
    """An infer function over its own onnxruntime session (one intra-op thread)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    features = int(session.get_inputs()[0].shape[1])
    outputs = [o.name for o in session.get_outputs()]

    @batch
    def infer(input):
        label, probabilities = session.run(outputs, {input_name: input.astype(np.float32, copy=False)})
        # Triton's batched tensors carry the batch dimension first and at least one more: label [N] → [N, 1].
        return {"label": label.reshape(-1, 1), "probabilities": probabilities}

    return infer, features


config = TritonConfig(http_port=int(http_port), grpc_port=int(grpc_port), metrics_port=int(metrics_port), log_verbose=0)
with Triton(config=config) as triton:
    for spec in sys.argv[5:]:
        name, path = spec.split("=", 1)
        infer, features = infer_function(path)
        triton.bind(
            model_name=name,
            infer_func=infer,
            inputs=[Tensor(name="input", dtype=np.float32, shape=(features,))],
            outputs=[Tensor(name="label", dtype=np.int64, shape=(1,)), Tensor(name="probabilities", dtype=np.float32, shape=(-1,))],
            config=ModelConfig(
                max_batch_size=max(max_batch, 1),
                batcher=DynamicBatcher(max_queue_delay_microseconds=500) if max_batch > 1 else None,
            ),
            strict=False,
        )
    print("READY", flush=True)
    triton.serve()
