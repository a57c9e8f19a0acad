#!/usr/bin/env bash
# Unary gRPC load with ghz (Go; a client that does not saturate before the server does) against
# inflow's gRPC server over models/repository: digits-mlp, 1 row, 64 concurrent calls, for TF
# Serving Predict, OIP ModelInfer with typed contents, and ModelInfer with raw_input_contents.
#
#   go install github.com/bojand/ghz/cmd/ghz@latest      # once (Go module proxy)
#   bench/server/grpc-ghz.sh [seconds=10] [concurrency=64] [connections=1]
#
# Starts bench/server/grpc-serve.ts on port 18500 itself (waits up to 60 s for the models to load)
# and stops it at the end. ghz's -z runs end with a few 'transport is closing' errors: ignore them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.node24/bin:$HOME/go/bin:$PATH" ORT_DISABLE_TELEMETRY=1 INFLOW_LOG_LEVEL=silent
SECONDS_PER_RUN=${1:-10}
CONCURRENCY=${2:-64}
CONNECTIONS=${3:-1}
PORT=18500
LOG=$(mktemp)
node bench/server/grpc-serve.ts "$PORT" >"$LOG" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; rm -f "$LOG"' EXIT
for _ in $(seq 300); do grep -q 'gRPC server on' "$LOG" && break; sleep 0.2; done
grep -q 'gRPC server on' "$LOG" || { echo "server did not start"; exit 1; }

ROW=$(node -e 'console.log(JSON.stringify(Array.from({length:64},(_,i)=>i%17)))')
RAW=$(node -e 'console.log(Buffer.from(Float32Array.from({length:64},(_,i)=>i%17).buffer).toString("base64"))')
run() { # name proto call data
  echo "== $1"
  ghz --insecure --proto "$2" -i src/protocol --call "$3" -d "$4" -c "$CONCURRENCY" --connections "$CONNECTIONS" \
    -z "${SECONDS_PER_RUN}s" --format summary "127.0.0.1:$PORT" | grep -E 'Count|Requests/sec|Average|50 %|99 %|Error|\[' || true
}
ghz --insecure --proto src/protocol/inference/grpc_service.proto -i src/protocol --call inference.GRPCInferenceService/ModelInfer \
  -d "{\"model_name\":\"digits-mlp\",\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,64],\"contents\":{\"fp32_contents\":$ROW}}]}" \
  -c 8 -z 2s "127.0.0.1:$PORT" >/dev/null # warm-up
run "TF Serving Predict (float_val)" src/protocol/tensorflow_serving/apis/prediction_service.proto tensorflow.serving.PredictionService/Predict \
  "{\"model_spec\":{\"name\":\"digits-mlp\"},\"inputs\":{\"input\":{\"dtype\":\"DT_FLOAT\",\"tensor_shape\":{\"dim\":[{\"size\":1},{\"size\":64}]},\"float_val\":$ROW}}}"
run "OIP ModelInfer (typed contents)" src/protocol/inference/grpc_service.proto inference.GRPCInferenceService/ModelInfer \
  "{\"model_name\":\"digits-mlp\",\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,64],\"contents\":{\"fp32_contents\":$ROW}}]}"
run "OIP ModelInfer (raw_input_contents)" src/protocol/inference/grpc_service.proto inference.GRPCInferenceService/ModelInfer \
  "{\"model_name\":\"digits-mlp\",\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,64]}],\"raw_input_contents\":[\"$RAW\"]}"
