"""Quix Streams peer of the stateful benchmark (bench/streams/stateful-compare.ts): per record key,
count and mean of the JSON field "amount" over 10 s tumbling event-time windows (the Kafka record
timestamp, Quix's default), every update emitted as JSON {key, start, count, mean}.

    python quix_windowed.py --bootstrap H:P --input T --output T --app-id A [--state-dir D]
                            [--guarantee at-least-once|exactly-once] [--window-ms 10000]

State lives in Quix's RocksDB stores with changelog topics (Quix's defaults); the changelog topic is
created by Quix (auto_create_topics). Commits every 100 ms, like inflow and the Kafka Streams peer.
"""

import argparse

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Mean

p = argparse.ArgumentParser()
for flag in ("--bootstrap", "--input", "--output", "--app-id"):
    p.add_argument(flag, required=True)
p.add_argument("--guarantee", default="at-least-once", choices=["at-least-once", "exactly-once"])
p.add_argument("--state-dir", default="state")
p.add_argument("--window-ms", type=int, default=10_000)
a = p.parse_args()

app = Application(
    broker_address=a.bootstrap,
    consumer_group=a.app_id,
    auto_offset_reset="earliest",
    commit_interval=0.1,
    processing_guarantee=a.guarantee,
    state_dir=a.state_dir,
    loglevel="WARNING",
)
source = app.topic(a.input, key_deserializer="str", value_deserializer="json")
sink = app.topic(a.output, key_serializer="str", value_serializer="json")
sdf = app.dataframe(source)
sdf = sdf.tumbling_window(duration_ms=a.window_ms).agg(count=Count(), mean=Mean("amount")).current()
sdf = sdf.apply(lambda w, key, *_: {"key": key, "start": w["start"], "count": w["count"], "mean": w["mean"]}, metadata=True)
sdf.to_topic(sink)
print("READY", flush=True)
app.run()
