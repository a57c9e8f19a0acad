import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { LIBRARY_EVENTS, libraryInternalsProblems } from './library-internals.ts';

const libraryConsumer = async (): Promise<string> =>
  readFile(join(dirname(createRequire(import.meta.url).resolve('@platformatic/kafka')), 'clients', 'consumer', 'consumer.js'), 'utf8');

describe('the library-internals guard', () => {
  it('lists every library event the consumer wrapper listens to', async () => {
    const wrapper = await readFile(new URL('./platformatic-consumer.ts', import.meta.url), 'utf8');
    const heard = [...wrapper.matchAll(/\braw\.(?:on|once)\('([^']+)'/g)].map((m) => m[1]);
    assert.ok(heard.includes('consumer:group:join'), 'the wrapper listens to consumer:group:join');
    const guarded = new Set<string>(LIBRARY_EVENTS.map((e) => e.event));
    assert.deepEqual(
      heard.filter((event) => !guarded.has(event as string)),
      [],
      'add each event the consumer listens to to LIBRARY_EVENTS in library-internals.ts',
    );
  });

  it('names consumer:group:join when a library version no longer emits it', async () => {
    const source = (await libraryConsumer()).replaceAll(
      "emitWithDebug('consumer', 'group:join'",
      "emitWithDebug('consumer', 'group:joined'",
    );
    const problems = libraryInternalsProblems({ consumerSource: source });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /no longer emits "consumer:group:join".*generation/);
  });

  it('names every relied-on event a library version drops, and nothing for the pinned version', async () => {
    assert.deepEqual(libraryInternalsProblems({ consumerSource: await libraryConsumer() }), []);
    const problems = libraryInternalsProblems({ consumerSource: '' });
    assert.deepEqual(
      problems.map((p) => /"([^"]+)"/.exec(p)?.[1]),
      [...LIBRARY_EVENTS.map((e) => e.event), 'LeaveGroup'],
    );
  });
});
