import { createKafkaClient, createMemoryClient } from '../../src/kafka/index.ts';
import { brokerOrSkip } from '../setup/broker.ts';
import { restoreContract } from './restore-contract.ts';

restoreContract('the in-process log', () => createMemoryClient());

const bootstrap = brokerOrSkip();
if (bootstrap)
  restoreContract(`Apache Kafka at ${bootstrap.join(',')}`, () =>
    createKafkaClient({ bootstrapServers: bootstrap, clientId: 'inflow-restore' }),
  );
