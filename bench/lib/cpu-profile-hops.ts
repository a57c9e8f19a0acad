/**
 * Per-hop CPU attribution of V8 `.cpuprofile` files for the hop benches (bench/streams/pipeline-hops.ts,
 * bench/streams/stateful-hops.ts): each sample is charged to a named hop by rules on its stack.
 */

/** A V8 `.cpuprofile` (the fields used here). */
export interface CpuProfile {
  readonly nodes: ReadonlyArray<{
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
    readonly children?: readonly number[];
  }>;
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A hop rule: `url` and `fn` are regexes of a frame's script URL and function name. */
export interface HopRule {
  readonly hop: string;
  readonly url?: RegExp;
  readonly fn?: RegExp;
}

function hopOf(rules: readonly HopRule[], frames: ReadonlyArray<{ functionName: string; url: string }>): string {
  for (const f of frames) {
    for (const rule of rules) {
      if ((rule.url === undefined || rule.url.test(f.url)) && (rule.fn === undefined || rule.fn.test(f.functionName))) return rule.hop;
    }
  }
  return 'other';
}

/**
 * Sampled µs per hop within [fromUs, toUs] of the monotonic clock (the profile's own time base), and per
 * `<hop>: <leaf function>`. Each sample is charged to the first frame, from the leaf up, that a rule matches
 * (`other` when none does).
 */
export function attributeHops(
  p: CpuProfile,
  rules: readonly HopRule[],
  fromUs: number,
  toUs: number,
): { hops: Map<string, number>; leaves: Map<string, number>; total: number } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const hopCache = new Map<number, string>();
  const frameName = (id: number | undefined): string => {
    const f = id === undefined ? undefined : byId.get(id)?.callFrame;
    return f ? `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/(node_modules|src)\//, '$1/')}:${f.lineNumber + 1}` : '?';
  };
  /** The leaf, and for a native leaf (no script) the nearest two script frames that called it. */
  const leafName = (id: number): string => {
    if (byId.get(id)?.callFrame.url !== '') return frameName(id);
    const callers: string[] = [];
    for (let at = parent.get(id); at !== undefined && callers.length < 2; at = parent.get(at)) {
      if (byId.get(at)?.callFrame.url) callers.push(frameName(at));
    }
    return [frameName(id), ...callers].join(' ← ');
  };
  const hops = new Map<string, number>();
  const leaves = new Map<string, number>();
  let t = p.startTime;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const delta = p.timeDeltas[i] ?? 0;
    t += delta;
    if (t < fromUs || t > toUs) continue;
    const id = p.samples[i] as number;
    let hop = hopCache.get(id);
    if (hop === undefined) {
      const frames: Array<{ functionName: string; url: string }> = [];
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)?.callFrame;
        if (f) frames.push(f);
      }
      hop = hopOf(rules, frames);
      hopCache.set(id, hop);
    }
    // A sample stands for the time since the previous one.
    hops.set(hop, (hops.get(hop) ?? 0) + delta);
    total += delta;
    const key = `${hop}: ${leafName(id)}`;
    leaves.set(key, (leaves.get(key) ?? 0) + delta);
  }
  return { hops, leaves, total };
}
