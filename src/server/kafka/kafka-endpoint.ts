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
 */
import { InflowError } from '../../errors.ts';
import type { KafkaHeader } from '../../kafka/types.ts';
import type { LocalInference } from '../../serving/local-inference.ts';
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
}

interface Decoded {
  readonly protocol: 'oip' | 'tfserving';
  readonly model: string;
  readonly version: number | undefined;
  readonly label: string | undefined;
  readonly inputs: Record<string, Tensor>;
  readonly oip: OipRequest | undefined;
  readonly tfFormat: TfJsonFormat | undefined;
  readonly binary: boolean;
}

interface Encoded {
  readonly body: Buffer;
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

  function decode(record: StreamRecord<Buffer | null, Buffer | null>): Decoded {
    const body = record.value;
    if (body === null || body.length === 0)
      throw new InflowError('INVALID_ARGUMENT', 'request record has no value; expected an inference request body');
    const h = record.headers;
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
      const key = record.key?.toString('utf8');
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
    return { protocol: 'oip', model, version, label, inputs: oip.inputs, oip, tfFormat: undefined, binary: headerLength !== undefined };
  }

  function encode(d: Decoded, outputs: Readonly<Record<string, Tensor>>, version: number, id: string | undefined): Encoded {
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
  b.stream(options.requestTopic, {}, { name: 'requests' })
    .mapValues((r) => decode(r), { name: 'decode-request' })
    .predict<Encoded>(
      {
        inferencer: inference,
        inferencerName: 'embedded',
        model: (r) => ({
          model: r.value.model,
          ...(r.value.version !== undefined ? { version: r.value.version } : {}),
          ...(r.value.label !== undefined ? { label: r.value.label } : {}),
        }),
        inputs: (r) => r.value.inputs,
        outputs: (r, outputs, info) =>
          encode(r.value, outputs, info.version, r.value.oip?.id ?? headerText(r.headers, KafkaEndpointHeader.REQUEST_ID)),
        maxBatch: options.maxBatch ?? 64,
        maxDelayMs: options.maxDelayMs ?? 0,
        ...(options.predictionLogTopic ? { predictionLog: { topic: options.predictionLogTopic } } : {}),
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
    .to(options.responseTopic, {}, { name: 'responses' });
  return b.build();
}
