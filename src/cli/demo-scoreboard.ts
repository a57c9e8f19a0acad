/**
 * The demo's downstream consumer: reads what each pipeline wrote to its scored topic, as any
 * application downstream would, and keeps per mode the records scored (each input counted once:
 * duplicates from at-least-once redelivery are counted apart), the accuracy against the
 * dataset's labels, the end-to-end latency (replay's send → prediction read here, ms) and the rate.
 */
import { InflowError } from '../errors.ts';
import type { KafkaClient, KafkaConsumer } from '../kafka/types.ts';
import { createLatencyRecorder, type LatencyRecorder } from './latency-recorder.ts';

/** What one prediction record says (the pipeline's `select: [id, label]`). */
interface Scored {
  id?: unknown;
  label?: unknown;
}

/** A prediction as the demo prints the first few of them. */
export interface SeenPrediction {
  readonly seq: number;
  readonly predicted: number;
  readonly label: number;
  readonly ms: number;
}

/** Counters of one mode. */
export interface ModeScore {
  /** Inputs with a prediction (each counted once). */
  scored: number;
  correct: number;
  /** Predictions of an input already scored (at-least-once redelivery). */
  duplicates: number;
  /** Records that were not a prediction of this run's inputs. */
  unreadable: number;
  readonly latency: LatencyRecorder;
  /** performance.now() of the first and last prediction read, ms. */
  firstAt: number;
  lastAt: number;
  readonly firstPredictions: SeenPrediction[];
  /** The latest prediction read. */
  last: SeenPrediction | undefined;
}

/** The scoreboard of a demo run. */
export interface Scoreboard {
  readonly modes: ReadonlyMap<string, ModeScore>;
  /** Resolves once the group assigned the scored topics' partitions (so nothing is missed or counted late). */
  readonly assigned: Promise<void>;
  /** Resolves once every mode scored `total` inputs, or rejects when `signal` aborts first. */
  complete(total: number, signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link startScoreboard}. */
export interface ScoreboardOptions {
  readonly client: KafkaClient;
  readonly groupId: string;
  /** Mode → the topic its predictions go to. */
  readonly topics: Readonly<Record<string, string>>;
  /** The true digit of each dataset row. */
  readonly labels: readonly number[];
  /** performance.now() at which input `seq` was sent (NaN until then). */
  readonly sentAt: Float64Array;
  readonly readCommitted: boolean;
  /** How many first predictions per mode to keep for printing. Default 3. */
  readonly keepFirst?: number;
}

const ID = /^d-(\d+)$/;

/** Subscribes to the scored topics and starts reading them in the background. */
export async function startScoreboard(options: ScoreboardOptions): Promise<Scoreboard> {
  const modes = new Map<string, ModeScore>();
  const byTopic = new Map<string, { score: ModeScore; seen: Uint8Array }>();
  for (const [mode, topic] of Object.entries(options.topics)) {
    const score: ModeScore = {
      scored: 0,
      correct: 0,
      duplicates: 0,
      unreadable: 0,
      latency: createLatencyRecorder(),
      firstAt: Number.NaN,
      lastAt: Number.NaN,
      firstPredictions: [],
      last: undefined,
    };
    modes.set(mode, score);
    byTopic.set(topic, { score, seen: new Uint8Array(options.sentAt.length) });
  }
  const consumer: KafkaConsumer = options.client.consumer({
    groupId: options.groupId,
    autoOffsetReset: 'earliest',
    isolationLevel: options.readCommitted ? 'read_committed' : 'read_uncommitted',
  });
  await consumer.subscribe(Object.values(options.topics));
  const stop = new AbortController();
  const waiters = new Set<() => void>();
  const keep = options.keepFirst ?? 3;
  let onAssigned!: () => void;
  const assigned = new Promise<void>((resolve) => (onAssigned = resolve));

  const loop = (async () => {
    while (!stop.signal.aborted) {
      const records = await consumer.poll({ maxRecords: 1000, timeoutMs: 200 });
      if (consumer.assignment().length > 0) onAssigned();
      const now = performance.now();
      for (const r of records) {
        const entry = byTopic.get(r.topic);
        if (!entry) continue;
        const { score, seen } = entry;
        let value: Scored;
        try {
          value = JSON.parse(r.value?.toString('utf8') ?? 'null') as Scored;
        } catch {
          score.unreadable++;
          continue;
        }
        const m = typeof value?.id === 'string' ? ID.exec(value.id) : null;
        const seq = m ? Number(m[1]) : -1;
        if (seq < 0 || seq >= seen.length || typeof value.label !== 'number') {
          score.unreadable++;
          continue;
        }
        if (seen[seq]) {
          score.duplicates++;
          continue;
        }
        seen[seq] = 1;
        const label = options.labels[seq % options.labels.length] as number;
        const ms = Math.max(0, now - (options.sentAt[seq] as number));
        score.scored++;
        if (value.label === label) score.correct++;
        score.latency.record(ms);
        if (Number.isNaN(score.firstAt)) score.firstAt = now;
        score.lastAt = now;
        score.last = { seq, predicted: value.label, label, ms };
        if (score.firstPredictions.length < keep) score.firstPredictions.push(score.last);
      }
      if (records.length > 0) for (const wake of waiters) wake();
    }
  })();
  // The loop's failure surfaces through complete(): a failed poll ends the run.
  let failure: unknown;
  loop.catch((error: unknown) => {
    failure = error;
    for (const wake of waiters) wake();
  });

  return {
    modes,
    assigned,
    complete(total, signal) {
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (failure !== undefined) return finish(() => reject(InflowError.from(failure)));
          if (signal.aborted) return finish(() => reject(InflowError.from(signal.reason, 'CANCELLED')));
          if ([...modes.values()].every((s) => s.scored >= total)) finish(resolve);
        };
        const finish = (settle: () => void): void => {
          waiters.delete(check);
          signal.removeEventListener('abort', check);
          settle();
        };
        waiters.add(check);
        signal.addEventListener('abort', check, { once: true });
        check();
      });
    },
    async close() {
      stop.abort();
      await loop.catch(() => undefined);
      await consumer.close();
    },
  };
}
