import { createKafkaClient, createMemoryClient } from '../../src/kafka/index.ts';
import { kafkaContract } from './contract.ts';
import { brokerOrSkip } from '../setup/broker.ts';

kafkaContract('the in-process log', () => createMemoryClient());

const bootstrap = brokerOrSkip();
if (bootstrap)
  kafkaContract(`Apache Kafka at ${bootstrap.join(',')}`, () =>
    createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-contract' }),
  );
