import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serveCommand } from './serve-command.ts';

const out = (): void => undefined;

describe('inflow serve model-sync flags', () => {
  it('refuses --models-* trust flags without --models-topic, naming them', async () => {
    await assert.rejects(
      serveCommand({ modelRepository: 'models/repository', modelsTrustedKeys: ['release.pub'], modelsAllowExecutable: true }, out),
      {
        code: 'INVALID_ARGUMENT',
        message: '--models-trusted-key, --models-allow-executable apply to --models-topic, which is not given',
      },
    );
  });

  it('says what is wrong with a trusted key file or a staging bound before anything starts', async () => {
    const base = { modelRepository: 'models/repository', kafka: '127.0.0.1:1', modelsTopic: 'inflow-models', noKafkaEndpoint: true };
    await assert.rejects(serveCommand({ ...base, modelsTrustedKeys: ['/nonexistent/release.pub'] }, out), {
      code: 'INVALID_CONFIG',
      message: /trusted key \/nonexistent\/release\.pub: cannot read it \(ENOENT\)/,
    });
    await assert.rejects(serveCommand({ ...base, modelsMaxStagingBytes: '8GiB' }, out), {
      code: 'INVALID_ARGUMENT',
      message: '--models-max-staging-bytes must be a positive integer of bytes, got "8GiB"',
    });
  });
});

describe('inflow serve --endpoint-formats', () => {
  it('refuses an endpoint formats file without a Kafka endpoint to apply it to', async () => {
    await assert.rejects(
      serveCommand({ modelRepository: 'models/repository', endpointFormats: 'formats.yaml' }, () => {}),
      {
        code: 'INVALID_ARGUMENT',
        message: /--endpoint-formats applies to the Kafka endpoint: give --kafka/,
      },
    );
  });
});
