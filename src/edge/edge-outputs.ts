/**
 * What the agent sends where, from its configuration: MQTT topics (templates with `{device}`),
 * alert rules on the prediction, and the Kafka records with their headers. Kafka headers:
 *
 * | header | on | value |
 * |---|---|---|
 * | `inflow-message-id` | every record | `<device>:<messageIdField>` or `<agentId>:<n>`: the de-duplication key |
 * | `inflow-device` | every record | the device id (also the record key, so a device's records keep their order) |
 * | `inflow-mqtt-topic` | readings, errors | the MQTT topic the message came on |
 * | `inflow-model`, `inflow-model-version` | predictions | the model and the version that answered |
 * | `inflow.error.code`, `inflow.error.reason` | errors | the error code and the reason label |
 */
import { compilePredicate } from '../streams/pipeline/pipeline-ops.ts';
import type { EdgeConfig } from './edge-config.ts';
import type { DeviceMessage, Prediction } from './device-message.ts';
import type { OutboxRecord } from './edge-store.ts';
import type { ErrorReport, Publication } from './message-processor.ts';

/** Kafka header names of forwarded records. */
export const EdgeHeader = {
  MESSAGE_ID: 'inflow-message-id',
  DEVICE: 'inflow-device',
  MQTT_TOPIC: 'inflow-mqtt-topic',
  MODEL: 'inflow-model',
  MODEL_VERSION: 'inflow-model-version',
  ERROR_CODE: 'inflow.error.code',
  ERROR_REASON: 'inflow.error.reason',
} as const;

/** `{device}` → the device id, with the MQTT level separator and wildcards made harmless. */
export function topicFor(template: string, device: string): string {
  return template.replaceAll('{device}', device.replace(/[/+#]/g, '_'));
}

export interface EdgeOutputs {
  publications(prediction: Prediction): Publication[];
  errorPublication(error: ErrorReport): Publication | undefined;
  records(topic: string, payload: Buffer, message: DeviceMessage, prediction: Prediction): OutboxRecord[];
  errorRecords(topic: string, payload: Buffer, error: ErrorReport): OutboxRecord[];
}

/** Compiles the outputs of `config` (publish + forward). */
export function createEdgeOutputs(config: Pick<EdgeConfig, 'publish' | 'forward' | 'kafka'>): EdgeOutputs {
  const { publish, forward } = config;
  const kafka = config.kafka !== undefined;
  const alerts = publish.alerts.map((a) => ({ ...a, test: compilePredicate(a.when) }));
  return {
    publications(prediction) {
      const text = JSON.stringify(prediction);
      const out: Publication[] = [
        { kind: 'prediction', topic: topicFor(publish.predictions.topic, prediction.device), payload: text, ...qosOf(publish.predictions) },
      ];
      for (const a of alerts) {
        if (!a.test(prediction)) continue;
        out.push({
          kind: 'alert',
          alert: a.name,
          topic: topicFor(a.topic, prediction.device),
          payload: JSON.stringify({ alert: a.name, ...prediction }),
          qos: a.qos,
          retain: a.retain,
        });
      }
      return out;
    },
    errorPublication(error) {
      if (publish.errors === undefined) return undefined;
      return {
        kind: 'error',
        topic: topicFor(publish.errors.topic, error.device ?? 'unknown'),
        payload: JSON.stringify(error),
        ...qosOf(publish.errors),
      };
    },
    records(topic, payload, message, prediction) {
      if (!kafka) return [];
      const key = Buffer.from(message.device);
      const common: [string, string][] = [
        [EdgeHeader.MESSAGE_ID, message.id],
        [EdgeHeader.DEVICE, message.device],
      ];
      const out: OutboxRecord[] = [];
      if (forward.readings !== undefined) {
        out.push({ topic: forward.readings, key, value: payload, headers: [...common, [EdgeHeader.MQTT_TOPIC, topic]] });
      }
      if (forward.predictions !== undefined) {
        out.push({
          topic: forward.predictions,
          key,
          value: Buffer.from(JSON.stringify(prediction)),
          headers: [...common, [EdgeHeader.MODEL, prediction.model], [EdgeHeader.MODEL_VERSION, String(prediction.version)]],
        });
      }
      return out;
    },
    errorRecords(topic, _payload, error) {
      if (!kafka || forward.errors === undefined) return [];
      const headers: [string, string][] = [
        ...(error.id === undefined ? [] : [[EdgeHeader.MESSAGE_ID, error.id] as [string, string]]),
        ...(error.device === undefined ? [] : [[EdgeHeader.DEVICE, error.device] as [string, string]]),
        [EdgeHeader.MQTT_TOPIC, topic],
        [EdgeHeader.ERROR_CODE, error.code],
        [EdgeHeader.ERROR_REASON, error.reason],
      ];
      return [
        {
          topic: forward.errors,
          key: error.device === undefined ? null : Buffer.from(error.device),
          value: Buffer.from(JSON.stringify(error)),
          headers,
        },
      ];
    },
  };
}

function qosOf(target: { qos: 0 | 1 | 2; retain: boolean }): { qos: 0 | 1 | 2; retain: boolean } {
  return { qos: target.qos, retain: target.retain };
}
