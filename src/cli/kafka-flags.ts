/** `--kafka` and `--kafka-config`, as every command that reaches a cluster reads them. */
import { type KafkaConfig, kafkaConfigSchema, parseBootstrapServers } from '../config/kafka-config.ts';
import { loadConfigFile, validateConfig } from '../config/load-config.ts';

/**
 * The cluster the flags name: the `--kafka-config` file's settings (SASL, TLS, timeouts), with
 * its bootstrapServers replaced by `--kafka` when given — or by `fallbackServers` (e.g.
 * $KAFKA_BOOTSTRAP_SERVERS) when there is no file. Undefined when no broker is named.
 */
export async function kafkaFromFlags(
  flags: { readonly kafka?: string | undefined; readonly kafkaConfig?: string | undefined },
  clientId: string,
  fallbackServers?: string,
): Promise<KafkaConfig | undefined> {
  const settings = flags.kafkaConfig ? await loadConfigFile(kafkaConfigSchema, flags.kafkaConfig) : undefined;
  const servers = flags.kafka ?? (settings ? undefined : fallbackServers);
  const bootstrap = servers !== undefined ? parseBootstrapServers(servers) : settings?.bootstrapServers;
  if (bootstrap === undefined || bootstrap === 'memory') return undefined;
  return validateConfig(kafkaConfigSchema, { clientId, ...settings, bootstrapServers: bootstrap }, '--kafka');
}
