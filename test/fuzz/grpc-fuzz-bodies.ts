/**
 * Request bodies for fuzzing the gRPC methods: random bytes, mutations (truncate, flip, splice)
 * of valid encoded requests, raw protobuf with fields of the wrong wire type, deeply nested
 * groups, and well-formed messages with hostile content (wrong dtypes, negative or 2^40 dims,
 * data that disagrees with the shape, unknown models, huge repeated fields). Each body stays
 * under ~500 KB so that 10 000 of them per method run in seconds.
 */
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { loadProtoRoot } from '../../src/protocol/proto-files.ts';

const root = loadProtoRoot([
  'tensorflow_serving/apis/prediction_service.proto',
  'tensorflow_serving/apis/model_service.proto',
  'inference/grpc_service.proto',
  'grpc/health/v1/health.proto',
]);

/** The message type `name` of the served .proto files. */
export function messageType(name: string): protobuf.Type {
  return root.lookupType(name);
}

/** Encodes `object` (plain JS, int64 as decimal strings, enums as names or numbers) as message `type`. */
export function encode(type: string, object: object): Buffer {
  const t = messageType(type);
  return Buffer.from(t.encode(t.fromObject(object)).finish());
}

/** The example model every valid request targets: input "input" FP32 [N, 64]. */
export const MODEL = 'digits-mlp';
const FEATURES = 64;
const row = Array.from({ length: FEATURES }, (_, i) => (i % 17) / 16);

export const validPredict = {
  model_spec: { name: MODEL, signature_name: 'serving_default' },
  inputs: { input: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '1' }, { size: String(FEATURES) }] }, float_val: row } },
};
const validPredictContent = {
  model_spec: { name: MODEL, version: { value: '1' } },
  inputs: {
    input: {
      dtype: 'DT_FLOAT',
      tensor_shape: { dim: [{ size: '2' }, { size: String(FEATURES) }] },
      tensor_content: Buffer.from(Float32Array.from([...row, ...row]).buffer),
    },
  },
  output_filter: ['label'],
};
export const validModelInfer = {
  model_name: MODEL,
  id: 'fuzz',
  inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', String(FEATURES)], contents: { fp32_contents: row } }],
};
const validModelInferRaw = {
  model_name: MODEL,
  model_version: '1',
  inputs: [{ name: 'input', datatype: 'FP32', shape: ['2', String(FEATURES)] }],
  outputs: [{ name: 'probabilities' }],
  raw_input_contents: [Buffer.from(Float32Array.from([...row, ...row]).buffer)],
};

const S = 'tensorflow.serving.';
const I = 'inference.';

/** Valid encoded requests of each method, by request type. */
export const validBodies: Record<string, Buffer[]> = {
  [`${S}PredictRequest`]: [encode(`${S}PredictRequest`, validPredict), encode(`${S}PredictRequest`, validPredictContent)],
  [`${S}GetModelMetadataRequest`]: [
    encode(`${S}GetModelMetadataRequest`, { model_spec: { name: MODEL }, metadata_field: ['signature_def'] }),
  ],
  [`${S}GetModelStatusRequest`]: [encode(`${S}GetModelStatusRequest`, { model_spec: { name: MODEL, version: { value: '1' } } })],
  [`${S}ClassificationRequest`]: [
    encode(`${S}ClassificationRequest`, {
      model_spec: { name: MODEL },
      input: { example_list: { examples: [{ features: { feature: { x: { float_list: { value: [1, 2] } } } } }] } },
    }),
  ],
  [`${S}RegressionRequest`]: [
    encode(`${S}RegressionRequest`, {
      model_spec: { name: MODEL },
      input: { example_list: { examples: [{ features: { feature: { x: { int64_list: { value: ['3'] } } } } }] } },
    }),
  ],
  [`${I}ModelInferRequest`]: [encode(`${I}ModelInferRequest`, validModelInfer), encode(`${I}ModelInferRequest`, validModelInferRaw)],
  [`${I}ModelMetadataRequest`]: [encode(`${I}ModelMetadataRequest`, { name: MODEL, version: '1' })],
  [`${I}ModelReadyRequest`]: [encode(`${I}ModelReadyRequest`, { name: MODEL })],
  [`${I}ServerMetadataRequest`]: [Buffer.alloc(0)],
  ['grpc.health.v1.HealthCheckRequest']: [encode('grpc.health.v1.HealthCheckRequest', { service: 'inference.GRPCInferenceService' })],
};

/** Truncations, byte flips and splices of one of `valid`. */
function mutations(valid: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc
    .tuple(
      fc.constantFrom(...valid),
      fc.nat(),
      fc.nat(),
      fc.uint8Array({ maxLength: 8 }),
      fc.constantFrom('truncate', 'flip', 'splice', 'repeat'),
    )
    .map(([body, x, y, bytes, how]) => {
      const a = x % (body.length + 1);
      const b = y % (body.length + 1);
      if (how === 'truncate') return body.subarray(0, a);
      if (how === 'flip') {
        const copy = Buffer.from(body);
        if (copy.length > 0) copy.writeUInt8(copy.readUInt8(a % copy.length) ^ (1 << (y % 8)), a % copy.length);
        return copy;
      }
      // A repeated message concatenates: protobuf merges it into one (last scalar wins, repeated fields append).
      if (how === 'repeat') return Buffer.concat([body, body.subarray(a)]);
      return Buffer.concat([body.subarray(0, Math.min(a, b)), Buffer.from(bytes), body.subarray(Math.max(a, b))]);
    });
}

/** A field with a random (often wrong) wire type: the decoder must reject or skip it, never crash. */
const wrongWireField = fc
  .record({
    field: fc.oneof(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 2 ** 29 - 1 })),
    wire: fc.integer({ min: 0, max: 7 }),
    varint: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    bytes: fc.uint8Array({ maxLength: 40 }),
    length: fc.oneof(fc.nat(64), fc.constant(2 ** 31 - 1), fc.constant(2 ** 32 - 1)),
  })
  .map(({ field, wire, varint, bytes, length }) => {
    const w = protobuf.Writer.create();
    w.uint32(((field << 3) | wire) >>> 0);
    if (wire === 0) w.uint64(varint.toString());
    else if (wire === 1) w.fixed64(varint.toString());
    else if (wire === 5) w.fixed32(Number(varint & 0xffffffffn));
    // Length-delimited: sometimes a length that lies about the bytes after it.
    else if (wire === 2)
      w.uint32(length % 3 === 0 ? bytes.length : length)
        .bytes(Buffer.from(bytes))
        .ldelim();
    return Buffer.from(w.finish());
  });

/** Unknown field number 1000 opened as a group `depth` times and never closed (decoders recurse). */
const groupTag = Buffer.from(
  protobuf.Writer.create()
    .uint32((1000 << 3) | 3)
    .finish(),
);
const deepGroups = fc.integer({ min: 1, max: 20_000 }).map((depth) => Buffer.alloc(depth * groupTag.length).fill(groupTag));

/** Any of the generic bodies, for any method. */
function genericBodies(valid: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 256 }).map((u) => Buffer.from(u)) },
    { weight: 4, arbitrary: mutations(valid) },
    { weight: 2, arbitrary: fc.array(wrongWireField, { minLength: 1, maxLength: 6 }).map((fields) => Buffer.concat(fields)) },
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.constantFrom(...valid), wrongWireField, fc.boolean())
        .map(([body, field, before]) => Buffer.concat(before ? [field, body] : [body, field])),
    },
    { weight: 1, arbitrary: deepGroups },
  );
}

// ---- hostile content in well-formed messages ----

const model = fc.oneof(
  { weight: 12, arbitrary: fc.constant(MODEL) },
  { weight: 2, arbitrary: fc.constantFrom('', 'nope', '__proto__', 'constructor', 'digits-mlp/../mlp-784', 'x'.repeat(5000)) },
  // Echoed in an error message, a name this long once broke the client's connection (the grpc-message trailer).
  { weight: 1, arbitrary: fc.integer({ min: 7000, max: 40_000 }).map((n) => '\u20ac'.repeat(n)) },
  { weight: 2, arbitrary: fc.string({ maxLength: 8 }) },
);

/** int64 fields: small (numbers: cheaper to encode), negative, 2^40, the int64 extremes (decimal strings). */
const int64: fc.Arbitrary<number | string> = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: -3, max: 70 }) },
  { weight: 2, arbitrary: fc.constantFrom(String(2 ** 40), '-1', '9223372036854775807', '-9223372036854775808', '4294967296') },
  { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String) },
);
/** Shapes: mostly [n, 64], else anything. */
const dims = fc.oneof(
  { weight: 3, arbitrary: fc.tuple(int64, fc.constant(FEATURES)).map((d) => [...d]) },
  { weight: 3, arbitrary: fc.array(int64, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.nat(5000).map((n) => new Array<number>(n).fill(1)) },
);

/** A huge repeated field: `count` copies (of 4–8 bytes each on the wire, ≤ ~800 KB). */
const hugeCount = fc.integer({ min: 1000, max: 50_000 });
/** Whole rows of 64 values (what the shape [n, 64] needs), else any length. */
const rows = fc.integer({ min: 0, max: 3 }).map((n) => n * FEATURES);
const floats = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.float(), { maxLength: 70 }) },
  { weight: 3, arbitrary: fc.tuple(rows, fc.float()).map(([n, v]) => new Array<number>(n).fill(v)) },
  { weight: 1, arbitrary: hugeCount.map((n) => new Array<number>(n).fill(0.5)) },
);
const doubles = fc.oneof(
  fc.array(fc.double(), { maxLength: 70 }),
  fc.tuple(rows, fc.double()).map(([n, v]) => new Array<number>(n).fill(v)),
);
const ints = fc.oneof(
  fc.array(fc.integer(), { maxLength: 70 }),
  fc.tuple(rows, fc.integer()).map(([n, v]) => new Array<number>(n).fill(v)),
);
const int64s = fc.oneof(
  fc.array(int64, { maxLength: 70 }),
  fc.tuple(rows, int64).map(([n, v]) => new Array<number | string>(n).fill(v)),
);
const nats = fc.array(fc.nat(), { maxLength: 70 });
const uint64s = fc.array(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), { maxLength: 70 });
const bools = fc.oneof(
  fc.array(fc.boolean(), { maxLength: 70 }),
  fc.tuple(rows, fc.boolean()).map(([n, v]) => new Array<boolean>(n).fill(v)),
);
const EMPTY = Buffer.alloc(0);
const byteStrings = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 80 }).map((a) => a.map((u) => Buffer.from(u))) },
  { weight: 1, arbitrary: hugeCount.map((n) => new Array<Buffer>(n).fill(EMPTY)) },
);
/** Raw bytes, often a multiple of 4 near the valid 256 bytes of one row. */
const rawBytes = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((u) => Buffer.from(u)),
  fc.integer({ min: 0, max: 4 * 64 * 3 }).map((n) => Buffer.alloc(n - (n % 4), 1)),
);

/** TF DataType numbers: FLOAT, DOUBLE, INT32, STRING, INT64, BOOL, BFLOAT16, HALF, FLOAT_REF, invalid. */
const tfDtype = fc.oneof(
  { weight: 4, arbitrary: fc.constant(1) },
  { weight: 3, arbitrary: fc.constantFrom(0, 2, 3, 4, 5, 6, 7, 9, 10, 14, 17, 18, 19, 22, 23, 101, 107) },
  { weight: 1, arbitrary: fc.integer({ min: -10, max: 400 }) },
);

/** One or two of `fields` (a message usually sets one data field; two is hostile too). */
function someOf(fields: Record<string, fc.Arbitrary<unknown>>): fc.Arbitrary<Record<string, unknown>> {
  const one = fc.oneof(...Object.entries(fields).map(([key, arbitrary]) => arbitrary.map((value) => ({ [key]: value }))));
  return fc.array(one, { maxLength: 2 }).map((parts) => parts.reduce<Record<string, unknown>>((all, part) => ({ ...all, ...part }), {}));
}

const tensorProto = fc
  .tuple(
    fc.record(
      {
        dtype: tfDtype,
        tensor_shape: fc.record(
          { dim: dims.map((d) => d.map((size) => ({ size }))), unknown_rank: fc.boolean() },
          { requiredKeys: ['dim'] },
        ),
        version_number: fc.integer(),
      },
      { requiredKeys: ['dtype', 'tensor_shape'] },
    ),
    someOf({
      tensor_content: rawBytes,
      float_val: floats,
      double_val: doubles,
      int_val: ints,
      half_val: ints,
      int64_val: int64s,
      uint32_val: nats,
      uint64_val: uint64s,
      bool_val: bools,
      string_val: byteStrings,
      scomplex_val: fc.array(fc.float(), { maxLength: 4 }),
    }),
  )
  .map(([head, data]) => ({ ...head, ...data }));

const modelSpec = fc.record(
  {
    name: model,
    version: fc.record({ value: int64 }),
    version_label: fc.constantFrom('', 'stable', 'canary', 'nope'),
    signature_name: fc.constantFrom('', 'serving_default', 'predict', 'x'),
  },
  { requiredKeys: ['name'] },
);

const alias = fc.oneof(
  { weight: 6, arbitrary: fc.constant('input') },
  { weight: 1, arbitrary: fc.constantFrom('', '__proto__', 'constructor', 'inputs') },
  { weight: 1, arbitrary: fc.string({ maxLength: 5 }) },
);
const outputName = fc.constantFrom('label', 'probabilities', '', 'nope', '__proto__');

const hostilePredict = fc.record(
  {
    model_spec: modelSpec,
    inputs: fc.dictionary(alias, tensorProto, { maxKeys: 3 }),
    output_filter: fc.array(outputName, { maxLength: 3 }),
  },
  { requiredKeys: ['inputs'] },
);

const inferParameter = fc.oneof(
  fc.record({ bool_param: fc.boolean() }),
  fc.record({ int64_param: int64 }),
  fc.record({ string_param: fc.string({ maxLength: 8 }) }),
  fc.record({ double_param: fc.double() }),
);
const parameters = fc.dictionary(fc.constantFrom('classification', 'shared_memory_region', 'binary_data', 'x', ''), inferParameter, {
  maxKeys: 2,
});

const contents = someOf({
  fp32_contents: floats,
  fp64_contents: doubles,
  int_contents: ints,
  int64_contents: int64s,
  uint_contents: nats,
  uint64_contents: uint64s,
  bool_contents: bools,
  bytes_contents: byteStrings,
});

const oipDatatype = fc.oneof(
  { weight: 4, arbitrary: fc.constant('FP32') },
  { weight: 3, arbitrary: fc.constantFrom('FP64', 'FP16', 'BF16', 'INT8', 'INT32', 'INT64', 'UINT8', 'UINT64', 'BOOL', 'BYTES') },
  { weight: 1, arbitrary: fc.constantFrom('', 'fp32', 'NOPE', 'TYPE_FP32', '__proto__') },
);

const hostileModelInfer = fc.record(
  {
    model_name: model,
    model_version: fc.oneof(fc.constantFrom('', '1', '2', '-1', '01', '1.0', '99999999999999999999'), int64),
    id: fc.string({ maxLength: 10 }),
    parameters,
    inputs: fc.array(
      fc.record({ name: alias, datatype: oipDatatype, shape: dims, parameters, contents }, { requiredKeys: ['name', 'datatype', 'shape'] }),
      { maxLength: 3 },
    ),
    outputs: fc.array(fc.record({ name: outputName, parameters }, { requiredKeys: ['name'] }), { maxLength: 3 }),
    raw_input_contents: fc.array(rawBytes, { maxLength: 3 }),
  },
  { requiredKeys: ['inputs'] },
);

const nameAndVersion = fc.record(
  { name: model, version: fc.oneof(fc.constantFrom('', '1', '2', '-1', 'x', '99999999999999999999'), int64) },
  { requiredKeys: [] },
);

const hostile: Record<string, fc.Arbitrary<object>> = {
  [`${S}PredictRequest`]: hostilePredict,
  [`${S}GetModelMetadataRequest`]: fc.record(
    { model_spec: modelSpec, metadata_field: fc.array(fc.constantFrom('signature_def', '', 'x', 'signature_def '), { maxLength: 3 }) },
    { requiredKeys: [] },
  ),
  [`${S}GetModelStatusRequest`]: fc.record({ model_spec: modelSpec }, { requiredKeys: [] }),
  [`${S}ClassificationRequest`]: fc.record({ model_spec: modelSpec }, { requiredKeys: [] }),
  [`${S}RegressionRequest`]: fc.record({ model_spec: modelSpec }, { requiredKeys: [] }),
  [`${I}ModelInferRequest`]: hostileModelInfer,
  [`${I}ModelMetadataRequest`]: nameAndVersion,
  [`${I}ModelReadyRequest`]: nameAndVersion,
  [`${I}ServerMetadataRequest`]: fc.constant({}),
  ['grpc.health.v1.HealthCheckRequest']: fc.record(
    { service: fc.oneof(model, fc.constant('inference.GRPCInferenceService')) },
    { requiredKeys: [] },
  ),
};

/** Fuzz bodies for a method whose request message is `requestType` (a fully qualified name). */
export function fuzzBodies(requestType: string): fc.Arbitrary<Buffer> {
  const valid = validBodies[requestType];
  const content = hostile[requestType];
  if (!valid || !content) throw new Error(`no fuzz bodies for ${requestType}`);
  return fc.oneof(
    { weight: 5, arbitrary: genericBodies(valid) },
    { weight: 5, arbitrary: content.map((object) => encode(requestType, object)) },
  );
}

/** Request and response message types of `service/method` (fully qualified service name). */
export function methodTypes(service: string, method: string): { request: protobuf.Type; response: protobuf.Type } {
  const found = root.lookupService(service).methods[method];
  if (!found) throw new Error(`${service} has no method ${method}`);
  found.resolve();
  const { resolvedRequestType: request, resolvedResponseType: response } = found;
  if (!request || !response) throw new Error(`${service}/${method}: message types did not resolve`);
  return { request, response };
}
