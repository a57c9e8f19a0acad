/**
 * Device messages: an MQTT payload (JSON) → the device id, a message id, and the model inputs
 * (the streams field mapping, one message = one batch row); and the prediction message built
 * from the model's outputs. A message that cannot be decoded raises an INVALID_ARGUMENT error
 * whose `details.reason` is a short, fixed label for metrics (`json`, `not-object`, `device`,
 * `message-id`, `inputs`) and whose message says what was wrong and what was expected.
 */
import { InflowError } from '../errors.ts';
import { compileInputMapping, compileOutputMapping, type InputField, type OutputField, readField } from '../streams/api/field-mapping.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** Why a device message could not be scored (a metrics label). */
export const RejectReason = {
  JSON: 'json',
  NOT_OBJECT: 'not-object',
  DEVICE: 'device',
  MESSAGE_ID: 'message-id',
  INPUTS: 'inputs',
  /** The model refused the inputs (wrong dtype/shape for it). */
  MODEL: 'model',
  /** Inference failed for another reason (no version loaded, deadline). */
  INFERENCE: 'inference',
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

/** A decoded device message. */
export interface DeviceMessage {
  readonly device: string;
  /** Stable across redeliveries when `messageIdField` is set; the Kafka header `inflow-message-id`. */
  readonly id: string;
  readonly value: Record<string, unknown>;
  readonly inputs: Record<string, Tensor>;
}

export interface DecoderOptions {
  readonly agentId: string;
  /** Device id from a topic level (0-based) or a payload field; default the whole topic. */
  readonly device?: { readonly topicLevel?: number | undefined; readonly field?: string | undefined } | undefined;
  readonly messageIdField?: string | undefined;
  readonly inputs: Readonly<Record<string, InputField>>;
}

function reject(reason: RejectReason, message: string, cause?: unknown, ids?: { device: string; id: string }): InflowError {
  return new InflowError('INVALID_ARGUMENT', message, { details: { reason, ...ids }, ...(cause === undefined ? {} : { cause }) });
}

/** The device and message id an error names, when the message got that far. */
export function idsOf(error: InflowError): { device: string; id: string } | undefined {
  const { device, id } = error.details ?? {};
  return typeof device === 'string' && typeof id === 'string' ? { device, id } : undefined;
}

/** The metrics label of an error raised while scoring a message. */
export function reasonOf(error: unknown): RejectReason {
  const reason = error instanceof InflowError ? error.details?.reason : undefined;
  if (typeof reason === 'string' && (Object.values(RejectReason) as string[]).includes(reason)) return reason as RejectReason;
  return error instanceof InflowError && error.code === 'INVALID_ARGUMENT' ? 'model' : 'inference';
}

const text = (v: unknown): string | undefined =>
  typeof v === 'string' && v.length > 0 ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;

/**
 * Compiles the decoder.
 * @returns `(topic, payload, seq)` → the message; `seq` (never reused by the agent) makes the default message id `<agentId>:<seq>`.
 */
export function createMessageDecoder(options: DecoderOptions): (topic: string, payload: Buffer, seq: string) => DeviceMessage {
  const toInputs = compileInputMapping(options.inputs);
  const device = options.device;
  return (topic, payload, seq) => {
    let value: unknown;
    try {
      value = JSON.parse(payload.toString('utf8'));
    } catch (error) {
      throw reject('json', `payload on "${topic}" is not JSON (${(error as Error).message}); expected a JSON object`, error);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value;
      throw reject('not-object', `payload on "${topic}" is ${got}; expected a JSON object`);
    }
    const object = value as Record<string, unknown>;
    let id: string | undefined = topic;
    if (device?.topicLevel !== undefined) id = text(topic.split('/')[device.topicLevel]);
    else if (device?.field !== undefined) id = text(readField(object, device.field));
    if (id === undefined) {
      const where = device?.field !== undefined ? `field "${device.field}"` : `level ${device?.topicLevel} of topic "${topic}"`;
      throw reject('device', `no device id in ${where}; expected a non-empty string or a number`);
    }
    let messageId = `${options.agentId}:${seq}`;
    if (options.messageIdField !== undefined) {
      const own = text(readField(object, options.messageIdField));
      if (own === undefined) {
        throw reject('message-id', `field "${options.messageIdField}" (the message id) is missing; expected a string or a number`);
      }
      messageId = `${id}:${own}`;
    }
    let inputs: Record<string, Tensor>;
    try {
      inputs = toInputs(object);
    } catch (error) {
      throw reject('inputs', (error as Error).message, error, { device: id, id: messageId });
    }
    return { device: id, id: messageId, value: object, inputs };
  };
}

/** The prediction message: ids, model and version, the mapped outputs, and the time it was made. */
export interface Prediction extends Record<string, unknown> {
  id: string;
  device: string;
  model: string;
  version: number;
  /** Milliseconds since the epoch. */
  ts: number;
}

/** Compiles the output mapping (every output as `auto` when none is given). */
export function createPredictionBuilder(
  outputs: Readonly<Record<string, OutputField>> | undefined,
): (message: DeviceMessage, model: string, version: number, tensors: Readonly<Record<string, Tensor>>, ts: number) => Prediction {
  const mapped = outputs === undefined ? undefined : compileOutputMapping(outputs, false);
  return (message, model, version, tensors, ts) => {
    const fields = mapped
      ? mapped(message.value, tensors)
      : compileOutputMapping(Object.fromEntries(Object.keys(tensors).map((t) => [t, { tensor: t }])), false)(message.value, tensors);
    // The ids, model and version win over an output mapped to the same name.
    const meta = { id: message.id, device: message.device, model, version };
    return Object.assign({ ...meta }, fields, meta, { ts });
  };
}
