"""Manages an inflow server's models with the official clients, unmodified: Triton's repository
extension through tritonclient.http and tritonclient.grpc (index, unload, load), and TF Serving's
ModelService.HandleReloadConfigRequest through tensorflow-serving-api. Every call carries the admin
token; one call without it shows it is required. Prints what it saw as JSON.
Usage: python model_management.py '<job json>'
job: {"grpc": "host:port", "rest": "host:port", "token": "<admin token>", "models": ["digits-mlp", ...]}
"""
import json
import sys

import grpc
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc
from tensorflow_serving.config import model_server_config_pb2
from tritonclient.utils import InferenceServerException


def index_rows(rows):
    return sorted([r["name"], r.get("version", ""), r.get("state", "")] for r in rows)


def status_of(call):
    try:
        call()
        return "OK"
    except InferenceServerException as error:
        return str(error.status())


def main():
    job = json.loads(sys.argv[1])
    auth = {"Authorization": f"Bearer {job['token']}"}
    # gRPC metadata keys are lowercase (grpc-core refuses "Authorization").
    gauth = {"authorization": f"Bearer {job['token']}"}
    out = {}

    http = httpclient.InferenceServerClient(url=job["rest"])
    g = grpcclient.InferenceServerClient(url=job["grpc"])
    out["http_without_token"] = status_of(lambda: http.get_model_repository_index())
    out["grpc_without_token"] = status_of(lambda: g.get_model_repository_index())
    out["http_extensions"] = http.get_server_metadata()["extensions"]
    out["grpc_extensions"] = list(g.get_server_metadata(as_json=True)["extensions"])

    # tritonclient.http: index, unload, load.
    out["http_index"] = index_rows(http.get_model_repository_index(headers=auth))
    http.unload_model("digits-mlp", headers=auth)
    out["http_ready_after_unload"] = http.is_model_ready("digits-mlp")
    http.load_model("digits-mlp", headers=auth)
    out["http_ready_after_load"] = http.is_model_ready("digits-mlp")
    out["http_load_unknown"] = status_of(lambda: http.load_model("no-such-model", headers=auth))

    # tritonclient.grpc: the same through RepositoryIndex / RepositoryModelUnload / RepositoryModelLoad.
    out["grpc_index"] = index_rows(g.get_model_repository_index(headers=gauth, as_json=True).get("models", []))
    g.unload_model("digits-mlp", headers=gauth)
    out["grpc_ready_after_unload"] = g.is_model_ready("digits-mlp")
    g.load_model("digits-mlp", headers=gauth)
    out["grpc_ready_after_load"] = g.is_model_ready("digits-mlp")

    # TF Serving's ModelService: a pushed model config; listed models load, the others unload.
    stub = model_service_pb2_grpc.ModelServiceStub(grpc.insecure_channel(job["grpc"]))
    metadata = [("authorization", f"Bearer {job['token']}")]

    def reload(names):
        request = model_management_pb2.ReloadConfigRequest()
        config = model_server_config_pb2.ModelServerConfig()
        for name in names:
            config.model_config_list.config.add(name=name, base_path=f"/models/{name}", model_platform="tensorflow")
        request.config.CopyFrom(config)
        return stub.HandleReloadConfigRequest(request, metadata=metadata, timeout=60)

    try:
        stub.HandleReloadConfigRequest(model_management_pb2.ReloadConfigRequest(), timeout=30)
        out["tf_reload_without_token"] = "OK"
    except grpc.RpcError as error:
        out["tf_reload_without_token"] = error.code().name
    first = reload(job["models"][:1])
    out["tf_reload_one"] = {"error_code": first.status.error_code, "ready": {m: http.is_model_ready(m) for m in job["models"]}}
    reload(job["models"])
    out["tf_reload_all"] = {m: http.is_model_ready(m) for m in job["models"]}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
