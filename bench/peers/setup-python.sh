#!/usr/bin/env bash
# Creates (once per requirements file content) one virtualenv per Python peer and prints its
# python path on the last line:  bench/peers/setup-python.sh mlserver|kserve|pytriton|quix
# Each peer gets its own venv because their pins conflict (fastapi/pydantic/uvicorn/protobuf).
# Venvs live under ~/.cache/inflow/bench-venv-<peer>-<hash> (INFLOW_CACHE_DIR overrides the root).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
peer="${1:?usage: setup-python.sh mlserver|kserve|pytriton|quix}"
req="$here/python/requirements-$peer.txt"
[ -f "$req" ] || { echo "no requirements for peer '$peer' (expected $req)" >&2; exit 2; }
hash=$(sha256sum "$req" | cut -c1-12)
venv="${INFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/inflow}/bench-venv-$peer-$hash"
if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$req" >&2
  "$venv/bin/python" -c "import onnxruntime" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
