#!/usr/bin/env bash
# Creates (once per requirements.txt content) the virtualenv with the official TF Serving and
# Triton clients used by the interop suite, and prints its python path on the last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hash=$(sha256sum "$here/requirements.txt" | cut -c1-12)
venv="${INFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inflow}/interop-venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
  # tensorflow-serving-api depends on `tensorflow`; its protobuf modules come from tensorflow-cpu above.
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps "tensorflow-serving-api==2.21.0" >&2
  "$venv/bin/python" -c "import tensorflow_serving.apis.prediction_service_pb2_grpc, tritonclient.grpc, tritonclient.http" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
