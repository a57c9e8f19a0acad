"""Confluent's Python client (confluent-kafka) as the reference for the Confluent wire format.

  produce FORMAT BOOTSTRAP REGISTRY TOPIC RECORDS          the digits records {id, pixels} of the JSON
      file RECORDS with the AvroSerializer / ProtobufSerializer / JSONSerializer (auto-registered
      under TOPIC-value)
  consume FORMAT BOOTSTRAP REGISTRY TOPIC COUNT           reads COUNT records with the matching
      deserializer and prints each value as one JSON line {id, label, probabilities}

The Protobuf message classes are built from descriptors here (no protoc step).
"""
import json
import sys

from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

AVRO_IN = json.dumps({
    "type": "record", "name": "Digit", "namespace": "inflow.interop",
    "fields": [{"name": "id", "type": "long"}, {"name": "pixels", "type": {"type": "array", "items": "float"}}],
})
JSON_IN = json.dumps({
    "$schema": "http://json-schema.org/draft-07/schema#", "title": "Digit", "type": "object",
    "properties": {"id": {"type": "integer"}, "pixels": {"type": "array", "items": {"type": "number"}}},
    "required": ["id", "pixels"],
})


def proto_classes():
    """inflow.interop.Digit {int64 id = 1; repeated float pixels = 2} and ScoredDigit, proto3."""
    f = descriptor_pb2.FileDescriptorProto(name="inflow_interop.proto", package="inflow.interop", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto
    digit = f.message_type.add(name="Digit")
    digit.field.add(name="id", number=1, type=T.TYPE_INT64, label=T.LABEL_OPTIONAL)
    digit.field.add(name="pixels", number=2, type=T.TYPE_FLOAT, label=T.LABEL_REPEATED)
    scored = f.message_type.add(name="ScoredDigit")
    scored.field.add(name="id", number=1, type=T.TYPE_INT64, label=T.LABEL_OPTIONAL)
    scored.field.add(name="label", number=2, type=T.TYPE_INT64, label=T.LABEL_OPTIONAL)
    scored.field.add(name="probabilities", number=3, type=T.TYPE_FLOAT, label=T.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    fd = pool.Add(f)
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("inflow.interop.Digit")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("inflow.interop.ScoredDigit")))


def produce(fmt, bootstrap, registry, topic, path):
    sr = SchemaRegistryClient({"url": registry})
    records = json.load(open(path))
    if fmt == "avro":
        ser = AvroSerializer(sr, AVRO_IN)
        make = lambda r: r
    elif fmt == "json-schema":
        ser = JSONSerializer(JSON_IN, sr)
        make = lambda r: r
    else:
        Digit, _ = proto_classes()
        ser = ProtobufSerializer(Digit, sr, {"use.deprecated.format": False})
        make = lambda r: Digit(id=r["id"], pixels=r["pixels"])
    p = Producer({"bootstrap.servers": bootstrap})
    for r in records:
        value = ser(make(r), SerializationContext(topic, MessageField.VALUE))
        p.produce(topic, key=f"k{r['id'] % 37}".encode(), value=value)
    if p.flush(60) != 0:
        raise SystemExit("records left unsent after 60 s")


def consume(fmt, bootstrap, registry, topic, count):
    sr = SchemaRegistryClient({"url": registry})
    if fmt == "avro":
        de = AvroDeserializer(sr)
    elif fmt == "json-schema":
        de = JSONDeserializer(None, schema_registry_client=sr)
    else:
        _, Scored = proto_classes()
        de = ProtobufDeserializer(Scored, {"use.deprecated.format": False})
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"interop-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    seen = 0
    try:
        while seen < count:
            m = c.poll(30)
            if m is None:
                raise SystemExit(f"no record within 30 s after {seen} of {count}")
            if m.error():
                raise SystemExit(str(m.error()))
            v = de(m.value(), SerializationContext(topic, MessageField.VALUE))
            if fmt == "protobuf":
                v = {"id": v.id, "label": v.label, "probabilities": list(v.probabilities)}
            print(json.dumps(v), flush=True)
            seen += 1
    finally:
        c.close()


if __name__ == "__main__":
    cmd, fmt, bootstrap, registry, topic = sys.argv[1:6]
    if cmd == "produce":
        produce(fmt, bootstrap, registry, topic, sys.argv[6])
    else:
        consume(fmt, bootstrap, registry, topic, int(sys.argv[6]))
