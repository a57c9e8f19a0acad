import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRemoteInferencer } from '../client/remote-inferencer.ts';
import { cliError, oneLine } from './cli-errors.ts';
import { InflowError } from '../errors.ts';
import { createLatencyRecorder, formatMs, nearestRank } from './latency-recorder.ts';
import { createLiveLines, progressBar, withSpinner } from './progress.ts';
import { formatCount, renderTable } from './text-table.ts';

function sink(isTTY: boolean): { write(t: string): void; isTTY: boolean; text: () => string } {
  let text = '';
  return { write: (t) => void (text += t), isTTY, text: () => text };
}

describe('CLI output helpers', () => {
  it('draws a progress bar clamped to 0..100 %', () => {
    assert.equal(progressBar(0, 10, 10), '[░░░░░░░░░░]   0%');
    assert.equal(progressBar(5, 10, 10), '[█████░░░░░]  50%');
    assert.equal(progressBar(15, 10, 4), '[████] 100%');
    assert.equal(progressBar(1, 0, 4), '[░░░░]   0%');
  });

  it('redraws live lines in place on a terminal and prints them at most once per interval elsewhere', () => {
    const tty = sink(true);
    const live = createLiveLines(tty);
    live.update(['a', 'b']);
    live.update(['c', 'd']);
    assert.equal(tty.text(), '\x1b[2Ka\n\x1b[2Kb\n\x1b[2F\x1b[2Kc\n\x1b[2Kd\n');
    let now = 0;
    const log = sink(false);
    const lines = createLiveLines(log, { intervalMs: 1000, now: () => now });
    lines.update(['first']);
    now = 500;
    lines.update(['skipped']);
    now = 1000;
    lines.update(['second']);
    lines.finish(['final']);
    assert.equal(log.text(), 'first\nsecond\nfinal\n');
  });

  it('reports spinner work with its duration, and passes its error through', async () => {
    const log = sink(false);
    assert.equal(await withSpinner(log, 'loading', Promise.resolve(7), (n) => `loaded ${n}`), 7);
    assert.match(log.text(), /^loading…\n✔ loaded 7 \(\d+\.\d s\)\n$/);
    await assert.rejects(withSpinner(sink(true), 'failing', Promise.reject(new InflowError('UNAVAILABLE', 'no'))), { code: 'UNAVAILABLE' });
  });

  it('answers nearest-rank percentiles over every sample and over the recent window', () => {
    assert.equal(nearestRank([], 50), Number.NaN);
    assert.equal(nearestRank([1, 2, 3, 4], 50), 2);
    assert.equal(nearestRank([1, 2, 3, 4], 100), 4);
    const r = createLatencyRecorder(2);
    for (let i = 1; i <= 3000; i++) r.record(i);
    assert.deepEqual([r.count, r.percentile(50), r.percentile(99), r.max, r.mean], [3000, 1500, 2970, 3000, 1500.5]);
    assert.deepEqual([r.recentPercentile(0.1), r.recentPercentile(100)], [2999, 3000]);
    assert.deepEqual([formatMs(0.4213), formatMs(12.34), formatMs(1520), formatMs(Number.NaN)], ['0.42 ms', '12.3 ms', '1.52 s', '-']);
  });

  it('aligns tables: numbers right, text left', () => {
    assert.deepEqual(
      renderTable([
        ['MODE', 'RECORDS', 'P50'],
        ['embedded', formatCount(12345.6), '0.42 ms'],
        ['remote', '7', '12.3 ms'],
      ]),
      ['MODE      RECORDS  P50', 'embedded   12,346  0.42 ms', 'remote          7  12.3 ms'],
    );
  });

  it('turns a port in use and an unknown flag into one-line errors that say what to do', () => {
    const inUse = cliError(
      Object.assign(new Error('listen EADDRINUSE: address already in use 127.0.0.1:8501'), {
        code: 'EADDRINUSE',
        address: '127.0.0.1',
        port: 8501,
      }),
    );
    assert.equal(inUse.code, 'FAILED_PRECONDITION');
    assert.match(inUse.message, /^127\.0\.0\.1:8501 is already in use; .*--rest-port/);
    const grpc = cliError(
      new InflowError(
        'UNAVAILABLE',
        'gRPC server cannot listen on 127.0.0.1:8500: No address added errors: [listen EADDRINUSE: address already in use 127.0.0.1:8500]',
      ),
    );
    assert.match(grpc.message, /^127\.0\.0\.1:8500 is already in use/);
    const flag = cliError(
      Object.assign(new TypeError("Unknown option '--bogus'. To specify a positional argument starting with a '-', place it at the end"), {
        code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
      }),
    );
    assert.equal(flag.message, "Unknown option '--bogus'; run the command with --help for its options");
    assert.equal(cliError(new InflowError('NOT_FOUND', 'x')).code, 'NOT_FOUND');
    assert.equal(
      oneLine(new InflowError('INVALID_CONFIG', 'invalid configuration in f:\n  a: bad\n  b: worse')),
      'invalid configuration in f: a: bad; b: worse',
    );
    // The remote client's own error, as `inflow predict --url` prints it (was "…options:; url…").
    const remote = ((): InflowError => {
      try {
        createRemoteInferencer({ protocol: 'oip-rest', url: '127.0.0.1:8501' });
      } catch (error) {
        return cliError(error);
      }
      throw new Error('expected an INVALID_CONFIG error');
    })();
    assert.match(oneLine(remote), /^invalid configuration in remote client options: url: "127\.0\.0\.1:8501" is not a REST URL/);
    assert.match(oneLine(new InflowError('INTERNAL', 'x'.repeat(700))), /… \(--verbose prints all of it\)$/);
  });
});
