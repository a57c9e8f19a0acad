import type { KafkaConfigInput } from '../../config/kafka-config.ts';
import type { KafkaClient } from '../types.ts';
export function createKafkaClient(_config: KafkaConfigInput): KafkaClient {
  throw new Error('todo');
}
