import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRouter, type RouteState, type Router } from './router.ts';

const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);

function shares(router: Router, model: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const key of KEYS) {
    const { version } = router.resolve(model, { key });
    counts.set(version, (counts.get(version) ?? 0) + 1);
  }
  return new Map([...counts].map(([v, n]) => [v, n / KEYS.length]));
}

function routerWith(state: RouteState, random?: () => number): Router {
  const router = createRouter(random ? { random } : {});
  router.update('m', state);
  return router;
}

describe('router', () => {
  it('answers with the latest ready version when neither version nor label is given', () => {
    const router = routerWith({ ready: [3, 10, 2], labels: {} });
    assert.deepEqual(router.resolve('m', {}), { version: 10 });
    assert.deepEqual(router.resolve('m', { version: 3 }), { version: 3 });
  });

  it('resolves labels to their versions', () => {
    const router = routerWith({ ready: [1, 2], labels: { stable: 1, canary: 2 } });
    assert.deepEqual(router.resolve('m', { label: 'stable' }), { version: 1 });
    assert.deepEqual(router.resolve('m', { label: 'canary' }), { version: 2 });
  });

  it("rejects version and label together with TF Serving's message", () => {
    const router = routerWith({ ready: [1], labels: { stable: 1 } });
    assert.throws(() => router.resolve('m', { version: 1, label: 'stable' }), {
      code: 'INVALID_ARGUMENT',
      message: 'Both model version (1) and model version label (stable) cannot be supplied.',
    });
  });

  it("answers NOT_FOUND with TF Serving's messages for unknown models and versions that are not ready", () => {
    const router = routerWith({ ready: [1], labels: {} });
    assert.throws(() => router.resolve('other', {}), { code: 'NOT_FOUND', message: 'Servable not found for request: Latest(other)' });
    assert.throws(() => router.resolve('other', { label: 'stable' }), {
      code: 'NOT_FOUND',
      message: 'Servable not found for request: Latest(other)',
    });
    assert.throws(() => router.resolve('other', { version: 4 }), {
      code: 'NOT_FOUND',
      message: 'Servable not found for request: Specific(other, 4)',
    });
    assert.throws(() => router.resolve('m', { version: 2 }), {
      code: 'NOT_FOUND',
      message: 'Servable not found for request: Specific(m, 2)',
    });
    router.update('m', { ready: [], labels: {} });
    assert.throws(() => router.resolve('m', {}), { code: 'NOT_FOUND', message: 'Servable not found for request: Latest(m)' });
  });

  it('rejects an unknown label with INVALID_ARGUMENT and a label on a version that is not ready with NOT_FOUND', () => {
    const router = routerWith({ ready: [1], labels: { canary: 2 } });
    assert.throws(() => router.resolve('m', { label: 'nope' }), {
      code: 'INVALID_ARGUMENT',
      message: 'Unrecognized servable version label: nope',
    });
    assert.throws(() => router.resolve('m', { label: 'canary' }), {
      code: 'NOT_FOUND',
      message: 'Servable not found for request: Specific(m, 2) (label "canary" points to version 2, which is not ready)',
    });
  });

  it('splits keyed requests within ±2 % of the configured weights', () => {
    const router = routerWith({
      ready: [1, 2, 3],
      labels: {},
      split: [
        { version: 1, weight: 50 },
        { version: 2, weight: 30 },
        { version: 3, weight: 20 },
      ],
    });
    const got = shares(router, 'm');
    for (const [version, want] of [
      [1, 0.5],
      [2, 0.3],
      [3, 0.2],
    ] as const) {
      assert.ok(Math.abs((got.get(version) ?? 0) - want) <= 0.02, `version ${version}: ${got.get(version)} vs ${want}`);
    }
    router.update('m', {
      ready: [1, 2],
      labels: {},
      split: [
        { version: 1, weight: 0.9 },
        { version: 2, weight: 0.1 },
      ],
    });
    const canary = shares(router, 'm').get(2) ?? 0;
    assert.ok(Math.abs(canary - 0.1) <= 0.02, `canary share ${canary}`);
  });

  it('sends the same key to the same version every time and across updates that keep the weights', () => {
    const state: RouteState = {
      ready: [1, 2],
      labels: { stable: 1 },
      split: [
        { version: 1, weight: 50 },
        { version: 2, weight: 50 },
      ],
    };
    const router = routerWith(state, () => {
      throw new Error('random() must not be used for keyed requests');
    });
    const first = KEYS.slice(0, 200).map((key) => router.resolve('m', { key }).version);
    for (let i = 0; i < 1000; i++) assert.equal(router.resolve('m', { key: 'user-7' }).version, first[7]);
    router.update('m', { ...state, ready: [1, 2, 3], labels: { stable: 2 } });
    assert.deepEqual(
      KEYS.slice(0, 200).map((key) => router.resolve('m', { key }).version),
      first,
    );
    assert.ok(first.includes(1) && first.includes(2));
  });

  it('uses random() for requests without a key', () => {
    let next = 0;
    const router = routerWith(
      {
        ready: [1, 2],
        labels: {},
        split: [
          { version: 1, weight: 75 },
          { version: 2, weight: 25 },
        ],
      },
      () => next,
    );
    next = 0.74;
    assert.equal(router.resolve('m', {}).version, 1);
    next = 0.76;
    assert.equal(router.resolve('m', {}).version, 2);
  });

  it('spreads the keys of a split version that became un-ready over the others by weight and keeps every other key where it was', () => {
    const router = routerWith({
      ready: [1, 2, 3],
      labels: {},
      split: [
        { version: 1, weight: 40 },
        { version: 2, weight: 20 },
        { version: 3, weight: 40 },
      ],
    });
    const before = KEYS.slice(0, 1000).map((key) => router.resolve('m', { key }).version);
    router.update('m', {
      ready: [1, 2],
      labels: {},
      split: [
        { version: 1, weight: 40 },
        { version: 2, weight: 20 },
        { version: 3, weight: 40 },
      ],
    });
    const after = KEYS.slice(0, 1000).map((key) => router.resolve('m', { key }).version);
    assert.ok(!after.includes(3));
    before.forEach((version, i) => {
      if (version !== 3) assert.equal(after[i], version, 'keys of ready versions stay');
    });
    const share2 = after.filter((v) => v === 2).length / after.length;
    assert.ok(Math.abs(share2 - 1 / 3) <= 0.05, `renormalised share of version 2: ${share2}`);
    const moved = after.filter((v, i) => before[i] === 3 && v === 1).length / before.filter((v) => v === 3).length;
    assert.ok(Math.abs(moved - 2 / 3) <= 0.08, `share of version 3's keys moved to version 1: ${moved}`);
    // None of the split's versions ready: the latest ready version answers instead of failing.
    router.update('m', {
      ready: [5],
      labels: {},
      split: [
        { version: 1, weight: 40 },
        { version: 2, weight: 20 },
      ],
    });
    assert.equal(router.resolve('m', { key: 'user-1' }).version, 5);
  });

  it('rejects invalid splits and shadows at update with INVALID_ARGUMENT and keeps the previous state', () => {
    const router = routerWith({ ready: [1, 2], labels: {} });
    const bad: Array<[RouteState, RegExp]> = [
      [{ ready: [1, 2], labels: {}, split: [{ version: 3, weight: 1 }] }, /split version 3 is not ready \(ready: \[1, 2\]\)/],
      [{ ready: [1, 2], labels: {}, split: [{ version: 1, weight: -1 }] }, /split weight of version 1 is -1; expected a finite number ≥ 0/],
      [
        {
          ready: [1, 2],
          labels: {},
          split: [
            { version: 1, weight: 0 },
            { version: 2, weight: 0 },
          ],
        },
        /split weights sum to 0; expected a sum > 0/,
      ],
      [{ ready: [1, 2], labels: {}, split: [{ version: 1, weight: Number.NaN }] }, /weight of version 1 is NaN/],
      [
        {
          ready: [1, 2],
          labels: {},
          split: [
            { version: 1, weight: 1 },
            { version: 1, weight: 1 },
          ],
        },
        /names version 1 twice/,
      ],
      [{ ready: [1, 2], labels: {}, split: [] }, /split is empty/],
      [{ ready: [1, 2], labels: {}, shadow: { version: 2, fraction: 1.5 } }, /shadow fraction is 1.5; expected a number in \[0, 1\]/],
      [{ ready: [1, 2], labels: {}, shadow: { version: 9, fraction: 0.1 } }, /shadow version 9 is not ready/],
      [{ ready: [1.5], labels: {} }, /ready\[0\] is 1.5; expected a non-negative integer version/],
    ];
    for (const [state, message] of bad) {
      assert.throws(() => router.update('m', state), { code: 'INVALID_ARGUMENT', message }, message.source);
    }
    assert.deepEqual(router.state('m'), { ready: [1, 2], labels: {} });
    assert.equal(router.resolve('m', {}).version, 2);
  });

  it('mirrors the configured fraction of keyed requests to the shadow version, sticky by key', () => {
    const router = routerWith({ ready: [1, 2], labels: {}, shadow: { version: 2, fraction: 0.25 } });
    router.update('m', { ready: [1, 2], labels: { stable: 1 }, shadow: { version: 2, fraction: 0.25 } });
    let mirrored = 0;
    for (const key of KEYS) {
      const route = router.resolve('m', { key, label: 'stable' });
      assert.equal(route.version, 1);
      if (route.shadow !== undefined) {
        assert.equal(route.shadow, 2);
        mirrored++;
      }
    }
    assert.ok(Math.abs(mirrored / KEYS.length - 0.25) <= 0.02, `shadow share ${mirrored / KEYS.length}`);
    const once = router.resolve('m', { key: 'user-42', version: 1 });
    for (let i = 0; i < 100; i++) assert.deepEqual(router.resolve('m', { key: 'user-42', version: 1 }), once);
    assert.deepEqual(router.resolve('m', { version: 2, key: 'user-42' }), { version: 2 }, 'never mirrored to itself');
  });

  it('never mirrors a request that names a version explicitly, but mirrors label requests', () => {
    const router = routerWith({ ready: [1, 2], labels: { stable: 1 }, shadow: { version: 2, fraction: 1 } });
    assert.deepEqual(router.resolve('m', { version: 1, key: 'k' }), { version: 1 });
    assert.deepEqual(router.resolve('m', { version: 1 }), { version: 1 });
    assert.deepEqual(router.resolve('m', { label: 'stable', key: 'k' }), { version: 1, shadow: 2 });
  });

  it('hashes the shadow decision independently of the split', () => {
    const router = routerWith({
      ready: [1, 2, 3],
      labels: {},
      split: [
        { version: 1, weight: 50 },
        { version: 2, weight: 50 },
      ],
      shadow: { version: 3, fraction: 0.5 },
    });
    const mirroredPerVersion = new Map<number, [number, number]>();
    for (const key of KEYS) {
      const route = router.resolve('m', { key });
      const [hit, all] = mirroredPerVersion.get(route.version) ?? [0, 0];
      mirroredPerVersion.set(route.version, [hit + (route.shadow === undefined ? 0 : 1), all + 1]);
    }
    for (const [version, [hit, all]] of mirroredPerVersion) {
      assert.ok(Math.abs(hit / all - 0.5) <= 0.03, `version ${version}: ${hit}/${all} mirrored`);
    }
  });

  it('keeps accepting a shadow whose version became un-ready and stops mirroring to it', () => {
    const router = routerWith({ ready: [1, 2], labels: {}, shadow: { version: 2, fraction: 1 } });
    assert.deepEqual(router.resolve('m', { key: 'k' }), { version: 2 }, 'the latest is the shadow itself');
    router.update('m', { ready: [1, 3], labels: {}, shadow: { version: 2, fraction: 1 } });
    assert.deepEqual(router.resolve('m', { key: 'k' }), { version: 3 });
    router.update('m', { ready: [1, 2, 3], labels: {}, shadow: { version: 2, fraction: 1 } });
    assert.deepEqual(router.resolve('m', { key: 'k' }), { version: 3, shadow: 2 });
  });

  it('uses random() for the shadow decision of requests without a key', () => {
    let next = 0;
    const router = routerWith({ ready: [1, 2], labels: { stable: 1 }, shadow: { version: 2, fraction: 0.1 } }, () => next);
    next = 0.09;
    assert.deepEqual(router.resolve('m', { label: 'stable' }), { version: 1, shadow: 2 });
    next = 0.1;
    assert.deepEqual(router.resolve('m', { label: 'stable' }), { version: 1 });
  });

  it('resolves against one snapshot even when an update lands during the resolution', () => {
    const split = (weights: [number, number]): RouteState => ({
      ready: [1, 2],
      labels: {},
      split: [
        { version: 1, weight: weights[0] },
        { version: 2, weight: weights[1] },
      ],
      shadow: { version: 2, fraction: 1 },
    });
    let calls = 0;
    const router: Router = routerWith(split([100, 0]), () => {
      calls++;
      // The split's draw swaps in a state that would send everything to 2 and mirror nothing.
      router.update('m', { ready: [2], labels: {} });
      return 0.5;
    });
    assert.deepEqual(router.resolve('m', {}), { version: 1, shadow: 2 }, 'old split and old shadow, not a mix');
    assert.equal(calls, 2);
    assert.deepEqual(router.resolve('m', {}), { version: 2 }, 'the next resolve sees the new state');
  });

  it('keeps its own frozen copy of the state', () => {
    const state: RouteState = { ready: [1, 2], labels: { stable: 1 } };
    const router = routerWith(state);
    state.ready.push(3);
    state.labels.stable = 2;
    assert.equal(router.resolve('m', {}).version, 2);
    assert.equal(router.resolve('m', { label: 'stable' }).version, 1);
    const copy = router.state('m')!;
    assert.deepEqual(copy, { ready: [1, 2], labels: { stable: 1 } });
    assert.ok(Object.isFrozen(copy) && Object.isFrozen(copy.ready));
  });

  it('forgets a removed model', () => {
    const router = routerWith({ ready: [1], labels: {} });
    router.remove('m');
    assert.equal(router.state('m'), undefined);
    assert.throws(() => router.resolve('m', {}), { code: 'NOT_FOUND' });
  });
});
