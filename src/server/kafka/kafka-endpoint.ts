/**
 * The Kafka-native model server (third deployment mode): requests arrive on a topic and
 * predictions leave on another, correlated by the request id header and keyed like the
 * request. It is a built-in topology on the streams runner — batching across requests,
 * per-key order, at-least-once or exactly-once, dead letters — not a separate code path.
 *
 * A request record: value = an OIP v2 inference request (JSON, or the binary tensor extension
 * when the `inference-header-content-length` header is present, like the REST body), or a TF
 * Serving `:predict` JSON body with header `inflow-protocol: tfserving`. The model comes from
 * header `inflow-model` (else the endpoint's default model), the version from
 * `inflow-model-version` or a label from `inflow-model-label`. The response keeps the request's
 * key and headers and adds `inflow-model`, `inflow-model-version`, `content-type` and, for
 * binary responses, `inference-header-content-length`. A request that fails goes to the error
 * topic unchanged with headers saying why (`inflow.error.code`, `inflow.error.message`, …).
 *
 * With a request serde (a Schema Registry format: Avro, Protobuf, JSON Schema), a request value
 * is a record whose fields are the model's inputs by name, one row each (flat or nested numbers,
 * shaped by the answering version's signature), and the response — in the response serde, JSON
 * when none is given — is a record whose fields are the outputs by name, one row each (a number
 * when the row has one element, else the row's values nested by its shape).
 */
import { InflowError } from '../../errors.ts';
import { type AsyncSerde, jsonSerde } from '../../kafka/serdes.ts';
import type { KafkaHeader } from '../../kafka/types.ts';
import type { LocalInference } from '../../serving/local-inference.ts';
import type { ResolvedRoute } from '../../serving/types.ts';
import { servedSignature, singleInput } from '../served-signature.ts';
import {
  DEFAULT_SIGNATURE_NAME,
  decodeOipBinaryRequest,
  decodeOipRequest,
  decodeTfPredict,
  encodeOipBinaryResponse,
  encodeOipResponse,
  encodeTfPredict,
  INFERENCE_HEADER_CONTENT_LENGTH,
  type OipRequest,
  parseJsonText,
  type TfJsonFormat,
  wantsBinaryOutput,
} from '../../tensor/codecs/index.ts';
import type { Tensor } from '../../tensor/tensor.ts';
import { compileInputMapping, type InputField, rowToJson } from '../../streams/api/field-mapping.ts';
import { createStreamsBuilder, headerText, type StreamRecord, type Topology, withHeader } from '../../streams/index.ts';

/** Request headers the endpoint reads. */
export const KafkaEndpointHeader = {
  MODEL: 'inflow-model',
  VERSION: 'inflow-model-version',
  LABEL: 'inflow-model-label',
  PROTOCOL: 'inflow-protocol',
  REQUEST_ID: 'inflow-request-id',
  CONTENT_TYPE: 'content-type',
} as const;

/** Content types of `fields` responses by serde (the header says how the value is framed). */
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  json: 'application/json',
  avro: 'application/vnd.confluent.avro',
  protobuf: 'application/vnd.confluent.protobuf',
  'json-schema': 'application/vnd.confluent.json-schema',
};

/** Options of {@link kafkaEndpointTopology}. */
export interface KafkaEndpointTopologyOptions {
  readonly inference: LocalInference;
  readonly requestTopic: string;
  readonly responseTopic: string;
  /** The model of requests without an `inflow-model` header; without it such requests fail. */
  readonly defaultModel?: string;
  /** Rows per inference call across requests; default 64. */
  readonly maxBatch?: number;
  /** Default 0: batch what queued while the model was busy. */
  readonly maxDelayMs?: number;
  /** Also log each prediction to this topic (schema: src/streams/README.md). */
  readonly predictionLogTopic?: string;
  /** The prediction log's value serde (a registry format); default JSON. */
  readonly predictionLogSerde?: AsyncSerde<unknown>;
  /** Requests are records in this serde whose fields are the model's inputs (see the file comment); default protocol bodies. */
  readonly requestSerde?: AsyncSerde<unknown>;
  /** Responses of {@link requestSerde} requests: records whose fields are the outputs; default JSON. */
  readonly responseSerde?: AsyncSerde<unknown>;
}

interface Decoded {
  readonly protocol: 'oip' | 'tfserving' | 'fields';
  readonly model: string;
  readonly version: number | undefined;
  /**
   * The route decode resolved to type the request (tfserving, fields): it goes to infer() as it
   * is, so the answer comes from the version that typed it and a shadow still gets its mirror
   * (an explicit version alone is never mirrored).
   */
  readonly route: ResolvedRoute | undefined;
  readonly label: string | undefined;
  readonly inputs: Record<string, Tensor>;
  readonly oip: OipRequest | undefined;
  readonly tfFormat: TfJsonFormat | undefined;
  readonly binary: boolean;
}

interface Encoded {
  /** Bytes, or the response record of a `fields` request (the response serde writes it). */
  readonly body: Buffer | Record<string, unknown>;
  readonly contentType: string;
  readonly headerLength: number | undefined;
}

function parseVersion(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new InflowError(
      'INVALID_ARGUMENT',
      `header ${KafkaEndpointHeader.VERSION} is "${text}"; expected a non-negative integer version`,
    );
  }
  return v;
}

/** The topology of the Kafka-native endpoint (the runner and its options are the caller's). */
export function kafkaEndpointTopology(options: KafkaEndpointTopologyOptions): Topology {
  const { inference } = options;
  const repository = inference.repository;
  const responseSerde = options.responseSerde ?? jsonSerde();

  /** A request record's fields as the answering version's inputs (one row each). */
  function fieldInputs(value: unknown, model: string, version: number): Record<string, Tensor> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `request value is ${value === null ? 'null' : typeof value}; expected a record whose fields are the inputs of ${model}`,
      );
    }
    const signature = servedSignature(repository, model, version);
    let mapping = mappings.get(signature);
    if (!mapping) {
      const fields: Record<string, InputField> = {};
      for (const input of signature.inputs) {
        const row = input.shape.slice(1);
        fields[input.name] = { field: input.name, dtype: input.dtype, ...(row.every((d) => d >= 0) ? { shape: row } : {}) };
      }
      mapping = compileInputMapping(fields);
      mappings.set(signature, mapping);
    }
    return mapping(value);
  }
  const mappings = new WeakMap<object, (value: unknown) => Record<string, Tensor>>();

  function decode(record: StreamRecord): Decoded {
    const h = record.headers;
    if (options.requestSerde) {
      const model = headerText(h, KafkaEndpointHeader.MODEL) ?? options.defaultModel;
      if (!model) {
        throw new InflowError(
          'INVALID_ARGUMENT',
          `request has no ${KafkaEndpointHeader.MODEL} header and the endpoint has no default model`,
        );
      }
      const pinned = parseVersion(headerText(h, KafkaEndpointHeader.VERSION));
      const label = headerText(h, KafkaEndpointHeader.LABEL);
      const key = Buffer.isBuffer(record.key) ? record.key.toString('utf8') : undefined;
      // The version that answers types the fields (dtype, row shape), so route now.
      const route = inference.router.resolve(model, {
        ...(pinned !== undefined ? { version: pinned } : {}),
        ...(label !== undefined ? { label } : {}),
        ...(key !== undefined ? { key } : {}),
      });
      const inputs = fieldInputs(record.value, model, route.version);
      return {
        protocol: 'fields',
        model,
        version: route.version,
        route,
        label: undefined,
        inputs,
        oip: undefined,
        tfFormat: undefined,
        binary: false,
      };
    }
    const body = record.value as Buffer | null;
    if (body === null || body.length === 0)
      throw new InflowError('INVALID_ARGUMENT', 'request record has no value; expected an inference request body');
    const model = headerText(h, KafkaEndpointHeader.MODEL) ?? options.defaultModel;
    if (!model) {
      throw new InflowError('INVALID_ARGUMENT', `request has no ${KafkaEndpointHeader.MODEL} header and the endpoint has no default model`);
    }
    let version = parseVersion(headerText(h, KafkaEndpointHeader.VERSION));
    const label = headerText(h, KafkaEndpointHeader.LABEL);
    if (version !== undefined && label !== undefined) {
      throw new InflowError('INVALID_ARGUMENT', `Both model version (${version}) and model version label (${label}) cannot be supplied.`);
    }
    const protocol = (headerText(h, KafkaEndpointHeader.PROTOCOL) ?? 'oip').toLowerCase();
    if (protocol === 'tfserving') {
      // The version that answers types the JSON (TF Serving's rows/columns carry no dtypes), so route now.
      const key = Buffer.isBuffer(record.key) ? record.key.toString('utf8') : undefined;
      const route = inference.router.resolve(model, {
        ...(version !== undefined ? { version } : {}),
        ...(label !== undefined ? { label } : {}),
        ...(key !== undefined ? { key } : {}),
      });
      version = route.version;
      const signature = servedSignature(repository, model, version);
      const request = decodeTfPredict(parseJsonText(body), (name) => {
        if (name !== DEFAULT_SIGNATURE_NAME)
          throw new InflowError('FAILED_PRECONDITION', `Serving signature name: "${name}" not found in signature def`);
        return signature;
      });
      return {
        protocol: 'tfserving',
        model,
        version,
        route,
        label: undefined,
        inputs: request.inputs,
        oip: undefined,
        tfFormat: request.format,
        binary: false,
      };
    }
    if (protocol !== 'oip') {
      throw new InflowError(
        'INVALID_ARGUMENT',
        `header ${KafkaEndpointHeader.PROTOCOL} is "${protocol}"; expected "oip" (default) or "tfserving"`,
      );
    }
    const headerLength = headerText(h, INFERENCE_HEADER_CONTENT_LENGTH);
    let oip: OipRequest;
    if (headerLength !== undefined) {
      oip = decodeOipBinaryRequest(body, headerLength, singleInput(repository, model, version));
    } else {
      oip = decodeOipRequest(parseJsonText(body));
    }
    return {
      protocol: 'oip',
      model,
      version,
      route: undefined,
      label,
      inputs: oip.inputs,
      oip,
      tfFormat: undefined,
      binary: headerLength !== undefined,
    };
  }

  function encode(d: Decoded, outputs: Readonly<Record<string, Tensor>>, version: number, id: string | undefined): Encoded {
    if (d.protocol === 'fields') {
      const value = Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, rowToJson(t)]));
      return { body: value, contentType: CONTENT_TYPES[responseSerde.name] ?? 'application/octet-stream', headerLength: undefined };
    }
    if (d.protocol === 'tfserving') {
      return {
        body: Buffer.from(encodeTfPredict(outputs, d.tfFormat as TfJsonFormat)),
        contentType: 'application/json',
        headerLength: undefined,
      };
    }
    const request = d.oip as OipRequest;
    const wanted = request.outputs
      ? Object.fromEntries(request.outputs.flatMap((o) => (outputs[o.name] ? [[o.name, outputs[o.name] as Tensor]] : [])))
      : outputs;
    const response = { modelName: d.model, modelVersion: String(version), ...(id !== undefined ? { id } : {}), outputs: wanted };
    const binary = request.parameters?.binary_data_output === true || Object.keys(wanted).some((n) => wantsBinaryOutput(request, n));
    if (!binary) return { body: Buffer.from(encodeOipResponse(response)), contentType: 'application/json', headerLength: undefined };
    const encoded = encodeOipBinaryResponse(response, request);
    return {
      body: Buffer.concat(encoded.chunks.map((c) => (Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength)))),
      contentType: 'application/octet-stream',
      headerLength: encoded.headerLength,
    };
  }

  const b = createStreamsBuilder();
  b.stream(options.requestTopic, options.requestSerde ? { value: options.requestSerde } : {}, { name: 'requests' })
    .mapValues((r) => decode(r), { name: 'decode-request' })
    .predict<Encoded>(
      {
        inferencer: inference,
        inferencerName: 'embedded',
        model: (r) =>
          r.value.route
            ? { model: r.value.model, route: r.value.route }
            : {
                model: r.value.model,
                ...(r.value.version !== undefined ? { version: r.value.version } : {}),
                ...(r.value.label !== undefined ? { label: r.value.label } : {}),
              },
        inputs: (r) => r.value.inputs,
        outputs: (r, outputs, info) =>
          encode(r.value, outputs, info.version, r.value.oip?.id ?? headerText(r.headers, KafkaEndpointHeader.REQUEST_ID)),
        maxBatch: options.maxBatch ?? 64,
        maxDelayMs: options.maxDelayMs ?? 0,
        ...(options.predictionLogTopic
          ? {
              predictionLog: {
                topic: options.predictionLogTopic,
                ...(options.predictionLogSerde ? { valueSerde: options.predictionLogSerde } : {}),
              },
            }
          : {}),
      },
      { name: 'infer' },
    )
    .map(
      (r) => {
        let headers: KafkaHeader[] = withHeader(r.headers, KafkaEndpointHeader.CONTENT_TYPE, r.value.contentType);
        headers = headers.filter(([k]) => k !== INFERENCE_HEADER_CONTENT_LENGTH && k !== KafkaEndpointHeader.PROTOCOL);
        if (r.value.headerLength !== undefined) headers.push([INFERENCE_HEADER_CONTENT_LENGTH, Buffer.from(String(r.value.headerLength))]);
        return { key: r.key, value: r.value.body, headers };
      },
      { name: 'encode-response' },
    )
    .to(options.responseTopic, options.requestSerde ? { value: responseSerde } : {}, { name: 'responses' });
  return b.build();
}
