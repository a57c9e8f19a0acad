import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { freePort, startService, treeCpuSeconds } from './process.ts';

test('a service is ready when its text appears, and stop() ends its whole process group', async () => {
  // The shell forks a child (sleep) that must go down with it.
  const s = await startService({
    name: 'sh',
    command: 'sh',
    args: ['-c', 'echo READY; sleep 30 & wait'],
    readyText: 'READY',
    timeoutMs: 10_000,
  });
  assert.match(s.output(), /READY/);
  await s.stop(2000);
  // Killed children may stay zombies (this container's PID 1 does not reap them): count live ones only.
  const live = async (): Promise<number> => {
    let n = 0;
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) === s.pid && rest[0] !== 'Z') n++;
    }
    return n;
  };
  let left = await live();
  for (let i = 0; i < 50 && left > 0; i++) {
    await new Promise((r) => setTimeout(r, 20)); // the kernel delivers SIGKILL asynchronously
    left = await live();
  }
  assert.equal(left, 0, 'a process of the group outlived stop()');
});

test('a service that exits before it is ready rejects with its output', async () => {
  await assert.rejects(
    startService({ name: 'bad', command: 'sh', args: ['-c', 'echo broken config >&2; exit 3'], readyText: 'READY', timeoutMs: 10_000 }),
    /bad exited with 3 before it was ready:\nbroken config/,
  );
});

test('the CPU time of a process tree counts its busy children', async () => {
  const s = await startService({
    name: 'busy',
    command: 'sh',
    args: ['-c', "echo READY; sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; sleep 30'"],
    readyText: 'READY',
    timeoutMs: 10_000,
  });
  try {
    let cpu = 0;
    for (let i = 0; i < 100 && cpu < 0.1; i++) {
      cpu = await treeCpuSeconds(s.pid);
      await new Promise((r) => setTimeout(r, 100)); // waits on a real child process, not on test logic
    }
    assert.ok(cpu >= 0.1, `expected ≥ 0.1 CPU s from the busy child, got ${cpu}`);
  } finally {
    await s.stop(2000);
  }
});

test('freePort gives a port number the kernel had free', async () => {
  const port = await freePort();
  assert.ok(Number.isInteger(port) && port > 0 && port < 65536);
});
