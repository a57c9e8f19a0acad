/**
 * `inflow models backtest <model> --version <v> --topic <input> --from <time|offset>`: replays the
 * retained input records through a version and its baseline and prints both side by side, with the
 * live-accuracy metrics when a labels topic is given (src/monitoring/backtest.ts).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { parseConfigText } from '../config/load-config.ts';
import type { KafkaConfig } from '../config/kafka-config.ts';
import { createModelSync, DEFAULT_MODELS_TOPIC } from '../delivery/index.ts';
import { InflowError } from '../errors.ts';
import { createKafkaClient } from '../kafka/index.ts';
import type { KafkaClient } from '../kafka/types.ts';
import { accuracyConfigSchema } from '../monitoring/accuracy-config.ts';
import { type BacktestFrom, type BacktestResult, runBacktest } from '../monitoring/backtest.ts';
import { loadServable } from '../runtime/index.ts';
import { createLocalInference } from '../serving/local-inference.ts';
import { compileInputMapping, type InputField } from '../streams/api/field-mapping.ts';
import { kafkaFromFlags } from './kafka-flags.ts';
import { parseDuration } from './models-rollout.ts';
import { renderTable } from './text-table.ts';

export const backtestHelp = `inflow models backtest <model> --version <v> --topic <input> --from <time|offset> [options]

Replays the input records Kafka still holds through version <v> and its baseline, side by side.
The replay joins no consumer group and commits nothing: production offsets do not move.

  --version <v>          the candidate version
  --baseline <v>         the version to compare with (omit: the candidate alone)
  --topic <input>        the input topic (JSON values)
  --from <time|offset>   earliest, an offset (in every partition) or a time (ISO 8601, e.g. 2026-12-06T08:00:00Z)
  --input <tensor>=<field>   model input from a record field (dotted path; repeat per input; default input=.)
  --labels <topic>       ground truth: score both versions (accuracy, precision/recall/F1, log-loss, MAE, RMSE)
  --label-field <path>   the label in a label record (default label; value: the bare value)
                         (an input record and its label are joined by their record keys)
  --prediction <tensor>  the predicted class/value (default label)
  --probabilities <tensor>   class probabilities, for log-loss
  --task classification|regression   (default classification)
  --label-window <duration>  a label counts up to this long after its record (default 10m)
  --repository <dir>     load the versions from this model repository instead of the models topic
  --models-topic <t>     the models topic (default ${DEFAULT_MODELS_TOPIC})
  --kafka host:port, --kafka-config <file>, --json`;

const bad = (message: string): InflowError => new InflowError('INVALID_ARGUMENT', message);

function parseFrom(text: string | undefined): BacktestFrom {
  if (text === undefined) throw bad('--from: expected earliest, an offset or a time (ISO 8601), e.g. --from 2026-12-06T08:00:00Z');
  if (text === 'earliest') return { earliest: true };
  if (/^\d{1,18}$/.test(text)) return { offset: BigInt(text) };
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw bad(`--from "${text}": expected earliest, an offset or a time (ISO 8601), e.g. 2026-12-06T08:00:00Z`);
  return { time: t };
}

function version(text: string | undefined, flag: string): number {
  if (text === undefined || !/^\d{1,9}$/.test(text) || Number(text) < 1)
    throw bad(`${flag}: expected a version number, got "${text ?? ''}"`);
  return Number(text);
}

/**
 * A scratch repository holding just `model`'s `versions` (config with versionPolicy: specific),
 * copied from `source`; so a backtest loads what it compares and nothing else.
 */
async function scratchRepository(source: string, model: string, versions: readonly number[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'inflow-backtest-'));
  const configPath = join(source, model, 'config.yaml');
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch {
    throw new InflowError('NOT_FOUND', `model "${model}" is not in the repository (no ${configPath})`);
  }
  const config = parseConfigText(text, configPath) as Record<string, unknown>;
  for (const v of versions) {
    try {
      await cp(join(source, model, String(v)), join(dir, model, String(v)), { recursive: true, errorOnExist: false });
    } catch {
      throw new InflowError('NOT_FOUND', `model "${model}" has no version ${v} (no ${join(source, model, String(v))})`);
    }
  }
  await writeFile(join(dir, model, 'config.yaml'), stringify({ ...config, versionPolicy: { specific: [...versions] } }));
  return dir;
}

/** Runs `inflow models backtest …` (the arguments after `backtest`). */
export async function modelsBacktest(
  argv: string[],
  out: (line: string) => void,
  deps: { client?: KafkaClient; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {},
): Promise<BacktestResult | undefined> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      kafka: { type: 'string' },
      'kafka-config': { type: 'string' },
      version: { type: 'string' },
      baseline: { type: 'string' },
      topic: { type: 'string' },
      from: { type: 'string' },
      input: { type: 'string', multiple: true },
      labels: { type: 'string' },
      'label-field': { type: 'string' },
      prediction: { type: 'string' },
      probabilities: { type: 'string' },
      task: { type: 'string' },
      'label-window': { type: 'string' },
      repository: { type: 'string' },
      'models-topic': { type: 'string' },
    },
  });
  if (values.help) {
    out(backtestHelp);
    return undefined;
  }
  const [model, ...extra] = positionals;
  if (!model || extra.length > 0)
    throw bad('inflow models backtest: expected one <model>, e.g. inflow models backtest digits-mlp --version 2');
  const candidate = version(values.version, '--version');
  const versions = values.baseline === undefined ? [candidate] : [candidate, version(values.baseline, '--baseline')];
  if (!values.topic) throw bad('--topic: expected the input topic to replay');
  const from = parseFrom(values.from);
  const mapping: Record<string, InputField> = {};
  for (const spec of values.input ?? ['input=.']) {
    const m = /^([^=]+)=(.+)$/.exec(spec);
    if (!m?.[1] || !m[2]) throw bad(`--input "${spec}": expected <tensor>=<field>, e.g. --input input=pixels`);
    mapping[m[1]] = { field: m[2] };
  }
  const inputs = compileInputMapping(mapping);
  const accuracy = values.labels
    ? accuracyConfigSchema.parse({
        labelsTopic: values.labels,
        ...(values.task ? { task: values.task } : {}),
        labelField: values['label-field'] ?? 'label',
        prediction: `outputs.${values.prediction ?? 'label'}`,
        ...(values.probabilities ? { probabilities: `outputs.${values.probabilities}` } : {}),
        windowMs: Number.MAX_SAFE_INTEGER,
        labelWindowMs: parseDuration(values['label-window'] ?? '10m', '--label-window'),
        graceMs: 0,
      })
    : undefined;
  const kafka = await kafkaFromFlags(
    { kafka: values.kafka, kafkaConfig: values['kafka-config'] },
    'inflow-backtest',
    (deps.env ?? process.env).KAFKA_BOOTSTRAP_SERVERS,
  );
  if (!deps.client && !kafka)
    throw bad('inflow models backtest needs the cluster: --kafka host:port, --kafka-config <file> or KAFKA_BOOTSTRAP_SERVERS');
  const client = deps.client ?? createKafkaClient(kafka as KafkaConfig);
  const cleanup: string[] = [];
  try {
    let source = values.repository;
    if (!source) {
      source = await mkdtemp(join(tmpdir(), 'inflow-backtest-sync-'));
      cleanup.push(source);
      const sync = createModelSync({
        client,
        topic: values['models-topic'] ?? DEFAULT_MODELS_TOPIC,
        repository: source,
        createTopic: false,
        startTimeoutMs: 60_000,
      });
      await sync.start();
      await sync.close();
    }
    const repo = await scratchRepository(source, model, versions);
    cleanup.push(repo);
    const inference = await createLocalInference({ modelRepository: repo, load: loadServable, watch: false, settleMs: 0 });
    try {
      const loaded = new Set(inference.repository.available(model));
      for (const v of versions) {
        if (!loaded.has(v)) {
          const why = inference.repository.status(model)?.versions.find((s) => s.version === v)?.error?.message;
          throw new InflowError('FAILED_PRECONDITION', `model "${model}" version ${v} does not load${why ? `: ${why}` : ''}`);
        }
      }
      const result = await runBacktest({
        client,
        inference,
        model,
        versions,
        topic: values.topic,
        from,
        inputs,
        ...(accuracy ? { accuracy } : {}),
        ...(deps.signal ? { signal: deps.signal } : {}),
      });
      out(values.json ? JSON.stringify(result) : renderBacktest(model, result));
      return result;
    } finally {
      await inference.close();
    }
  } finally {
    for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
    if (!deps.client) await client.close();
  }
}

const pct = (x: number | undefined): string => (x === undefined ? '–' : `${(x * 100).toFixed(2)} %`);
const num = (x: number | undefined): string => (x === undefined ? '–' : x.toPrecision(4));

/** The side-by-side table. */
export function renderBacktest(model: string, r: BacktestResult): string {
  const rows: string[][] = [];
  const col = (f: (v: BacktestResult['versions'][number]) => string) => r.versions.map(f);
  const report = (v: BacktestResult['versions'][number]) => v.reports[0];
  rows.push(['predictions', ...col((v) => String(v.predictions))]);
  rows.push(['failed', ...col((v) => String(v.failed))]);
  if (r.versions.length > 1) rows.push(['agreement with the candidate', ...col((v) => pct(v.agreement))]);
  if (r.labels) {
    rows.push(['labelled', ...col((v) => String(report(v)?.labelled ?? 0))]);
    rows.push(['unlabelled', ...col((v) => pct(report(v)?.unlabelledShare))]);
    rows.push(['accuracy', ...col((v) => pct(report(v)?.classification?.accuracy))]);
    rows.push(['log-loss', ...col((v) => num(report(v)?.classification?.logLoss))]);
    rows.push([
      'macro F1',
      ...col((v) => {
        const c = report(v)?.classification?.classes;
        return c && c.length > 0 ? num(c.reduce((s, k) => s + k.f1, 0) / c.length) : '–';
      }),
    ]);
    rows.push(['MAE', ...col((v) => num(report(v)?.regression?.mae))]);
    rows.push(['RMSE', ...col((v) => num(report(v)?.regression?.rmse))]);
    rows.push([
      'label delay p50 (s)',
      ...col((v) => num(report(v)?.labelDelayMs ? (report(v)?.labelDelayMs?.p50 ?? 0) / 1000 : undefined)),
    ]);
  }
  // Rows no version has a value for (MAE for a classifier) are left out.
  const shown = rows.filter((row) => row.slice(1).some((c) => c !== '–'));
  const head = ['', ...r.versions.map((v, i) => `v${v.version}${i === 0 ? ' (candidate)' : ' (baseline)'}`)];
  const errors = r.versions.filter((v) => v.firstError).map((v) => `v${v.version}: first failure ${v.firstError}`);
  return [
    `${model}: ${r.records} records of ${r.topic} replayed${r.unreadable ? ` (${r.unreadable} not JSON, skipped)` : ''}`,
    ...renderTable([head, ...shown]),
    ...(r.labels
      ? [
          `labels: ${Object.entries(r.labels)
            .map(([k, n]) => `${n} ${k}`)
            .join(', ')}`,
        ]
      : []),
    ...errors,
  ].join('\n');
}
