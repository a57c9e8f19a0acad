#!/usr/bin/env bash
# Creates (once per requirements.txt content) the virtualenv with Confluent's Python client used by
# the Schema Registry interop test, and prints its python path on the last line. Its own venv, not
# test/interop's: that one holds TensorFlow, and a change here must not rebuild it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
hash=$(sha256sum "$here/requirements.txt" | cut -c1-12)
venv="${INFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inflow}/registry-venv-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check --only-binary=:all: -r "$here/requirements.txt" >&2
  "$venv/bin/python" -c "import confluent_kafka.schema_registry.avro, confluent_kafka.schema_registry.protobuf, confluent_kafka.schema_registry.json_schema" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
