"""Quix Streams + Python onnxruntime: JSON {id, pixels} → session.run on one row per record inside
StreamingDataFrame.apply → JSON {id, label, probabilities}. Quix processes one record at a time.

    python quix_onnx.py --bootstrap H:P --input T --output T --app-id A --model model.onnx
                        [--guarantee at-least-once|exactly-once]

Commits every 100 ms (inflow's pipelines and the Kafka Streams peers use the same interval).
"""

import argparse

import numpy as np
import onnxruntime as ort
from quixstreams import Application

p = argparse.ArgumentParser()
for flag in ("--bootstrap", "--input", "--output", "--app-id", "--model"):
    p.add_argument(flag, required=True)
p.add_argument("--guarantee", default="at-least-once", choices=["at-least-once", "exactly-once"])
a = p.parse_args()

options = ort.SessionOptions()
options.intra_op_num_threads = 1
options.inter_op_num_threads = 1
session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
outputs = [o.name for o in session.get_outputs()]


def score(value: dict) -> dict:
    x = np.asarray(value["pixels"], dtype=np.float32).reshape(1, -1)
    label, probabilities = session.run(outputs, {input_name: x})
    return {"id": value["id"], "label": int(label.reshape(-1)[0]), "probabilities": probabilities[0].tolist()}


app = Application(
    broker_address=a.bootstrap,
    consumer_group=a.app_id,
    auto_offset_reset="earliest",
    commit_interval=0.1,
    processing_guarantee=a.guarantee,
    auto_create_topics=False,
    loglevel="WARNING",
)
source = app.topic(a.input, value_deserializer="json")
sink = app.topic(a.output, value_serializer="json")
sdf = app.dataframe(source).apply(score)
sdf.to_topic(sink)
print("READY", flush=True)
app.run()
