"""Calls an inflow server with Triton's official Python clients (tritonclient.http and tritonclient.grpc),
unmodified, and prints what it got as JSON. Usage: python triton_client.py '<job json>'
job: {"grpc": "host:port", "rest": "host:port", "model": "digits-mlp", "sample": "<path to models/samples/x.json>"}
"""
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

NP = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}


def array_json(array):
    if array.dtype.kind in ("S", "O", "U"):
        data = [x.decode() if isinstance(x, bytes) else str(x) for x in array.reshape(-1).tolist()]
    else:
        data = array.reshape(-1).tolist()
    return {"dtype": str(array.dtype), "shape": list(array.shape), "data": data}


def run(module, client, job, sample, binary, compression=None):
    inputs = []
    for name, t in sample["inputs"].items():
        array = np.array(t["data"], dtype=NP[t["datatype"]]).reshape(t["shape"])
        i = module.InferInput(name, list(array.shape), t["datatype"])
        if module is httpclient:
            i.set_data_from_numpy(array, binary_data=binary)
        else:
            i.set_data_from_numpy(array)
        inputs.append(i)
    names = list(sample["outputs"].keys())
    if module is httpclient:
        outputs = [module.InferRequestedOutput(n, binary_data=binary) for n in names]
    else:
        outputs = [module.InferRequestedOutput(n) for n in names]
    extra = {"request_compression_algorithm": compression} if compression else {}
    result = client.infer(job["model"], inputs, outputs=outputs, request_id="interop-1", **extra)
    return {n: array_json(result.as_numpy(n)) for n in names}


def classify(module, client, job, sample, k):
    """Triton's classification extension: the top-k classes of the "probabilities" output."""
    name, t = next(iter(sample["inputs"].items()))
    array = np.array(t["data"], dtype=NP[t["datatype"]]).reshape(t["shape"])
    i = module.InferInput(name, list(array.shape), t["datatype"])
    i.set_data_from_numpy(array)
    output = module.InferRequestedOutput("probabilities", class_count=k)
    result = client.infer(job["model"], [i], outputs=[output])
    return array_json(result.as_numpy("probabilities"))


def main():
    job = json.loads(sys.argv[1])
    sample = json.load(open(job["sample"]))
    out = {}
    http = httpclient.InferenceServerClient(url=job["rest"])
    out["http_live"] = http.is_server_live()
    out["http_ready"] = http.is_server_ready()
    out["http_model_ready"] = http.is_model_ready(job["model"])
    meta = http.get_model_metadata(job["model"])
    out["http_metadata"] = {"name": meta["name"], "inputs": [i["name"] for i in meta["inputs"]], "outputs": [o["name"] for o in meta["outputs"]]}
    out["http_json"] = run(httpclient, http, job, sample, binary=False)
    out["http_binary"] = run(httpclient, http, job, sample, binary=True)
    # Compressed request bodies (Content-Encoding: gzip / deflate), JSON and binary.
    out["http_gzip"] = run(httpclient, http, job, sample, binary=False, compression="gzip")
    out["http_deflate_binary"] = run(httpclient, http, job, sample, binary=True, compression="deflate")
    try:
        http.get_model_metadata("no-such-model")
        out["http_unknown_model"] = "OK"
    except Exception as error:  # InferenceServerException
        out["http_unknown_model"] = str(error.status() if hasattr(error, "status") else error)

    g = grpcclient.InferenceServerClient(url=job["grpc"])
    out["grpc_live"] = g.is_server_live()
    out["grpc_ready"] = g.is_server_ready()
    out["grpc_model_ready"] = g.is_model_ready(job["model"])
    gmeta = g.get_model_metadata(job["model"], as_json=True)
    out["grpc_metadata"] = {"name": gmeta["name"], "inputs": [i["name"] for i in gmeta["inputs"]], "outputs": [o["name"] for o in gmeta["outputs"]]}
    out["grpc_infer"] = run(grpcclient, g, job, sample, binary=True)
    out["http_classification"] = classify(httpclient, http, job, sample, 3)
    out["grpc_classification"] = classify(grpcclient, g, job, sample, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
