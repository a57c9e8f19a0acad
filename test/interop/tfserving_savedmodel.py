"""A TF Serving client's calls, unchanged, against a SavedModel that `inflow models import` turned
into an inflow model: gRPC Predict (tensorflow-serving-api) and REST :predict with the signature's
own input/output names, compared with TensorFlow's own outputs of the SavedModel. Prints JSON.
Usage: python tfserving_savedmodel.py '<job json>'
job: {"grpc": "host:port", "rest": "host:port", "model": "iris", "savedmodel": "<dir>"}
"""
import json
import sys
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc


def main():
    job = json.loads(sys.argv[1])
    features = np.random.default_rng(11).standard_normal((5, 4)).astype(np.float32)
    expected = tf.saved_model.load(job["savedmodel"]).signatures["serving_default"](features=tf.constant(features))
    expected = {k: v.numpy() for k, v in expected.items()}
    out = {"expected_outputs": sorted(expected)}

    # What a TF Serving client sends today: model name, signature, the signature's input name.
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(job["grpc"]))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = job["model"]
    request.model_spec.signature_name = "serving_default"
    request.inputs["features"].CopyFrom(tf.make_tensor_proto(features))
    response = stub.Predict(request, timeout=30)
    got = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
    out["grpc_outputs"] = sorted(got)
    out["grpc_max_diff"] = max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)
    out["grpc_shapes"] = {k: list(v.shape) for k, v in got.items()}

    meta = get_model_metadata_pb2.GetModelMetadataRequest()
    meta.model_spec.name = job["model"]
    meta.metadata_field.append("signature_def")
    answer = stub.GetModelMetadata(meta, timeout=30)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    answer.metadata["signature_def"].Unpack(sigs)
    sig = sigs.signature_def["serving_default"]
    out["metadata"] = {"inputs": sorted(sig.inputs.keys()), "outputs": sorted(sig.outputs.keys())}

    # REST :predict, row format, as curl or requests would send it.
    body = json.dumps({"signature_name": "serving_default", "instances": [{"features": row} for row in features.tolist()]}).encode()
    req = urllib.request.Request(f"http://{job['rest']}/v1/models/{job['model']}:predict", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        predictions = json.loads(r.read())["predictions"]
    rest = {k: np.array([p[k] for p in predictions], dtype=np.float32) for k in expected}
    out["rest_max_diff"] = max(float(np.max(np.abs(rest[k] - expected[k]))) for k in expected)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
