/**
 * The Kafka-native endpoint's record formats from a file (`inflow serve --endpoint-formats
 * <file>`), written like a pipeline's: the registry once, and a format per topic.
 *
 *   schemaRegistry: { url: http://registry:8081 }
 *   request: { format: avro }                                   # fields = the model's inputs
 *   response: { format: avro, schemaFile: digit-response.avsc }  # fields = its outputs
 *   predictionLog: { topic: inflow-predictions, value: { format: avro, schemaFile: log.avsc } }
 *
 * Relative paths (schema files, secret files) resolve against the file's folder.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { loadConfigFile } from '../../config/load-config.ts';
import { registryFormatSchema, schemaRegistryConfigSchema } from '../../config/schema-registry-config.ts';
import { registryClientFromConfig } from '../../kafka/schema-registry/registry-from-config.ts';
import type { KafkaEndpointOptions } from './kafka-endpoint-runner.ts';

/** The `--endpoint-formats` file. */
export const endpointFormatsSchema = z
  .strictObject({
    schemaRegistry: schemaRegistryConfigSchema,
    /** Requests: records whose fields are the model's inputs (default: OIP / TF Serving bodies). */
    request: registryFormatSchema.optional(),
    /** Responses of such requests: records whose fields are the outputs (default JSON). */
    response: registryFormatSchema.optional(),
    /** Log each prediction to `topic`, in `value`'s format (default JSON). */
    predictionLog: z.strictObject({ topic: z.string().min(1), value: registryFormatSchema.optional() }).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.response && !v.request) {
      ctx.addIssue({
        code: 'custom',
        path: ['response'],
        message: 'a response format needs a request format (protocol requests get protocol bodies)',
      });
    }
  });

/** The endpoint options a formats file gives; `signal` ends the registry client's retries. */
export async function endpointFormatsFromFile(
  file: string,
  signal?: AbortSignal,
): Promise<Pick<KafkaEndpointOptions, 'formats' | 'registry' | 'predictionLogTopic'>> {
  const config = await loadConfigFile(endpointFormatsSchema, file);
  const baseDir = dirname(resolve(file));
  const client = registryClientFromConfig(config.schemaRegistry, { baseDir, ...(signal ? { signal } : {}) });
  return {
    registry: { client, baseDir },
    formats: {
      ...(config.request ? { request: config.request } : {}),
      ...(config.response ? { response: config.response } : {}),
      ...(config.predictionLog?.value ? { predictionLog: config.predictionLog.value } : {}),
    },
    ...(config.predictionLog ? { predictionLogTopic: config.predictionLog.topic } : {}),
  };
}
