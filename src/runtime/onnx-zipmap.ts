/**
 * Turns ZipMap outputs into plain tensors. Classifiers exported by skl2onnx with zipmap=True end in
 * a ZipMap node whose output is a sequence of maps (class → probability); onnxruntime-node cannot
 * return non-tensor values ("Non tensor type is temporarily not supported"). ZipMap's input is
 * already the FP32 [N, classes] probability matrix, so this rewrite replaces each ZipMap that
 * feeds a graph output by an Identity of that matrix and retypes the graph output as FP32
 * [N, classes]. The class labels (ZipMap's classlabels_int64s / classlabels_strings attribute)
 * are returned so callers can tell column i's class.
 *
 * It edits the protobuf at the wire level (ModelProto.graph → GraphProto.node / .output) and copies
 * every other field byte for byte, so nothing the edit does not touch can be lost.
 */

/** A field of a protobuf message: its number, wire type and where its value lies. */
interface Field {
  number: number;
  wireType: number;
  start: number;
  end: number;
  valueStart: number;
  valueEnd: number;
}

function readVarint(buf: Uint8Array, pos: number): { value: bigint; next: number } {
  let value = 0n;
  let shift = 0n;
  for (let i = pos; i < buf.length && shift < 70n; i++) {
    const byte = buf[i] as number;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
    shift += 7n;
  }
  throw new Error('truncated or overlong varint');
}

function fieldsOf(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const key = readVarint(buf, pos);
    const number = Number(key.value >> 3n);
    const wireType = Number(key.value & 7n);
    pos = key.next;
    let valueStart = pos;
    if (wireType === 0) pos = readVarint(buf, pos).next;
    else if (wireType === 1) pos += 8;
    else if (wireType === 5) pos += 4;
    else if (wireType === 2) {
      const length = readVarint(buf, pos);
      valueStart = length.next;
      pos = length.next + Number(length.value);
    } else throw new Error(`unsupported protobuf wire type ${wireType}`);
    if (pos > buf.length) throw new Error('truncated protobuf message');
    fields.push({ number, wireType, start, end: pos, valueStart, valueEnd: pos });
  }
  return fields;
}

const utf8 = new TextDecoder();
const encoder = new TextEncoder();

function text(buf: Uint8Array, f: Field): string {
  return utf8.decode(buf.subarray(f.valueStart, f.valueEnd));
}

function varint(value: number): number[] {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

/** A length-delimited field (wire type 2). */
function lenField(number: number, payload: Uint8Array): Uint8Array {
  return concat([new Uint8Array([...varint((number << 3) | 2), ...varint(payload.length)]), payload]);
}

function varintField(number: number, value: number): Uint8Array {
  return new Uint8Array([...varint(number << 3), ...varint(value)]);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

interface NodeInfo {
  inputs: string[];
  outputs: string[];
  name: string;
  opType: string;
  labels: (string | number)[];
}

function readNode(buf: Uint8Array): NodeInfo {
  const node: NodeInfo = { inputs: [], outputs: [], name: '', opType: '', labels: [] };
  for (const f of fieldsOf(buf)) {
    if (f.number === 1 && f.wireType === 2) node.inputs.push(text(buf, f));
    else if (f.number === 2 && f.wireType === 2) node.outputs.push(text(buf, f));
    else if (f.number === 3 && f.wireType === 2) node.name = text(buf, f);
    else if (f.number === 4 && f.wireType === 2) node.opType = text(buf, f);
    else if (f.number === 5 && f.wireType === 2) node.labels.push(...readLabels(buf.subarray(f.valueStart, f.valueEnd)));
  }
  return node;
}

/** ZipMap's class labels from an AttributeProto (name 1, ints 8, strings 9); [] for other attributes. */
function readLabels(buf: Uint8Array): (string | number)[] {
  const fields = fieldsOf(buf);
  const nameField = fields.find((f) => f.number === 1);
  const name = nameField ? text(buf, nameField) : '';
  const labels: (string | number)[] = [];
  if (name === 'classlabels_int64s') {
    for (const f of fields.filter((g) => g.number === 8)) {
      if (f.wireType === 0) labels.push(Number(BigInt.asIntN(64, readVarint(buf, f.valueStart).value)));
      else {
        for (let pos = f.valueStart; pos < f.valueEnd; ) {
          const v = readVarint(buf, pos);
          labels.push(Number(BigInt.asIntN(64, v.value)));
          pos = v.next;
        }
      }
    }
  } else if (name === 'classlabels_strings') {
    for (const f of fields.filter((g) => g.number === 9)) labels.push(text(buf, f));
  }
  return labels;
}

/** ValueInfoProto for FP32 [N, classes]. */
function tensorValueInfo(name: string, classes: number): Uint8Array {
  const dimN = lenField(1, lenField(2, encoder.encode('N')));
  const dimC = lenField(1, varintField(1, classes));
  const tensorType = concat([varintField(1, 1 /* FLOAT */), lenField(2, concat([dimN, dimC]))]);
  return concat([lenField(1, encoder.encode(name)), lenField(2, lenField(1, tensorType))]);
}

function identityNode(node: NodeInfo): Uint8Array {
  const enc = (s: string): Uint8Array => encoder.encode(s);
  return concat([
    lenField(1, enc(node.inputs[0] ?? '')),
    lenField(2, enc(node.outputs[0] ?? '')),
    lenField(3, enc(node.name)),
    lenField(4, enc('Identity')),
  ]);
}

/** What {@link rewriteZipMap} made. */
export interface ZipMapRewrite {
  /** The rewritten model. */
  bytes: Uint8Array;
  /** Class labels by output name, column order. */
  classLabels: Record<string, (string | number)[]>;
}

/**
 * Replaces every ZipMap that produces a graph output (see the module comment).
 * @returns undefined when the model has no such ZipMap.
 * @throws Error when the bytes are not a well-formed protobuf message.
 */
export function rewriteZipMap(model: Uint8Array): ZipMapRewrite | undefined {
  const modelFields = fieldsOf(model);
  const graphField = modelFields.findLast((f) => f.number === 7 && f.wireType === 2);
  if (!graphField) return undefined;
  const graph = model.subarray(graphField.valueStart, graphField.valueEnd);
  const graphFields = fieldsOf(graph);
  const outputNames = new Set<string>();
  for (const f of graphFields) {
    if (f.number !== 12 || f.wireType !== 2) continue;
    const info = graph.subarray(f.valueStart, f.valueEnd);
    const name = fieldsOf(info).find((g) => g.number === 1);
    if (name) outputNames.add(text(info, name));
  }
  const classLabels: Record<string, (string | number)[]> = {};
  const replaced = new Map<Field, Uint8Array>();
  for (const f of graphFields) {
    if (f.number !== 1 || f.wireType !== 2) continue;
    const node = readNode(graph.subarray(f.valueStart, f.valueEnd));
    const output = node.outputs[0];
    if (node.opType !== 'ZipMap' || output === undefined || !outputNames.has(output) || node.labels.length === 0) continue;
    classLabels[output] = node.labels;
    replaced.set(f, lenField(1, identityNode(node)));
  }
  if (replaced.size === 0) return undefined;
  for (const f of graphFields) {
    if (f.number !== 12 || f.wireType !== 2) continue;
    const info = graph.subarray(f.valueStart, f.valueEnd);
    const nameField = fieldsOf(info).find((g) => g.number === 1);
    const name = nameField ? text(info, nameField) : '';
    const labels = classLabels[name];
    if (labels) replaced.set(f, lenField(12, tensorValueInfo(name, labels.length)));
  }
  const newGraph = concat(graphFields.map((f) => replaced.get(f) ?? graph.subarray(f.start, f.end)));
  const bytes = concat(modelFields.map((f) => (f === graphField ? lenField(7, newGraph) : model.subarray(f.start, f.end))));
  return { bytes, classLabels };
}
