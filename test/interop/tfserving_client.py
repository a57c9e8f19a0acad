"""Calls an inflow server with TensorFlow Serving's official Python client (tensorflow-serving-api),
unmodified, and prints what it got as JSON: Predict, GetModelMetadata, GetModelStatus, Classify and
MultiInference with tf.train.Example inputs, and REST :predict / :classify as curl would send them. Usage: python tfserving_client.py '<job json>'
job: {"grpc": "host:port", "rest": "host:port", "model": "digits-mlp", "sample": "<path to models/samples/x.json>"}
"""
import json
import sys
import urllib.error
import urllib.request

import grpc
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import classification_pb2, get_model_metadata_pb2, get_model_status_pb2, inference_pb2
from tensorflow_serving.apis import model_service_pb2_grpc, predict_pb2, prediction_service_pb2_grpc, regression_pb2

NP = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


def tensor_json(proto):
    array = tf.make_ndarray(proto)
    if array.dtype.kind in ("S", "O", "U"):
        data = [x.decode() if isinstance(x, bytes) else str(x) for x in array.reshape(-1).tolist()]
    else:
        data = array.reshape(-1).tolist()
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": data}


def rows(t):
    """The sample tensor's rows as lists of Python floats."""
    return np.array(t["data"], dtype=np.float64).reshape(t["shape"]).tolist()


def classes_json(classifications):
    return [[[c.label, c.score] for c in cl.classes] for cl in classifications]


def main():
    job = json.loads(sys.argv[1])
    sample = json.load(open(job["sample"]))
    out = {}
    channel = grpc.insecure_channel(job["grpc"])
    predict_stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    model_stub = model_service_pb2_grpc.ModelServiceStub(channel)

    request = predict_pb2.PredictRequest()
    request.model_spec.name = job["model"]
    request.model_spec.signature_name = "serving_default"
    for name, t in sample["inputs"].items():
        array = np.array(t["data"], dtype=NP[t["datatype"]]).reshape(t["shape"])
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    response = predict_stub.Predict(request, timeout=30)
    out["predict"] = {k: tensor_json(v) for k, v in response.outputs.items()}
    out["predict_model_spec"] = {"name": response.model_spec.name, "version": response.model_spec.version.value}

    meta_request = get_model_metadata_pb2.GetModelMetadataRequest()
    meta_request.model_spec.name = job["model"]
    meta_request.metadata_field.append("signature_def")
    meta = predict_stub.GetModelMetadata(meta_request, timeout=30)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    meta.metadata["signature_def"].Unpack(sigs)
    sig = sigs.signature_def["serving_default"]
    out["metadata"] = {
        "inputs": sorted(sig.inputs.keys()),
        "outputs": sorted(sig.outputs.keys()),
        "input_dtypes": {k: tf.dtypes.as_dtype(v.dtype).name for k, v in sig.inputs.items()},
    }

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = job["model"]
    status = model_stub.GetModelStatus(status_request, timeout=30)
    out["status"] = [
        {"version": s.version, "state": get_model_status_pb2.ModelVersionStatus.State.Name(s.state), "error_code": s.status.error_code}
        for s in status.model_version_status
    ]

    # Errors keep TF Serving's codes through the official client.
    bad = predict_pb2.PredictRequest()
    bad.model_spec.name = "no-such-model"
    try:
        predict_stub.Predict(bad, timeout=30)
        out["unknown_model"] = "OK"
    except grpc.RpcError as error:
        out["unknown_model"] = error.code().name

    # Classify with tf.train.Example inputs: each Example carries the input row as one float_list feature.
    input_name, input_tensor = next(iter(sample["inputs"].items()))
    examples = [
        tf.train.Example(features=tf.train.Features(feature={input_name: tf.train.Feature(float_list=tf.train.FloatList(value=row))}))
        for row in rows(input_tensor)
    ]
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = job["model"]
    classify.input.example_list.examples.extend(examples)
    classified = predict_stub.Classify(classify, timeout=30)
    out["classify"] = classes_json(classified.result.classifications)
    out["classify_model_spec"] = {"name": classified.model_spec.name, "version": classified.model_spec.version.value}

    # MultiInference: a classify task on the same Examples, as one (context-free) list.
    multi = inference_pb2.MultiInferenceRequest()
    task = multi.tasks.add()
    task.model_spec.name = job["model"]
    task.method_name = "tensorflow/serving/classify"
    multi.input.example_list.examples.extend(examples[:2])
    answered = predict_stub.MultiInference(multi, timeout=30)
    out["multi_inference"] = [classes_json(r.classification_result.classifications) for r in answered.results]

    # A classifier has no regression output: a status code, not a crash.
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = job["model"]
    regress.input.example_list.examples.extend(examples[:1])
    try:
        predict_stub.Regress(regress, timeout=30)
        out["regress_classifier"] = "OK"
    except grpc.RpcError as error:
        out["regress_classifier"] = error.code().name

    # TF Serving REST, as curl would send it.
    body = json.dumps({"instances": np.array(sample["inputs"]["input"]["data"], dtype=np.float64).reshape(sample["inputs"]["input"]["shape"]).tolist()}).encode()
    req = urllib.request.Request(f"http://{job['rest']}/v1/models/{job['model']}:predict", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        out["rest_predict"] = json.loads(r.read())
    body = json.dumps({"examples": [{input_name: row} for row in rows(input_tensor)]}).encode()
    req = urllib.request.Request(f"http://{job['rest']}/v1/models/{job['model']}:classify", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        out["rest_classify"] = json.loads(r.read())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
