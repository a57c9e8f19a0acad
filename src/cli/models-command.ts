/**
 * `inflow models publish|label|split|list|delete`: model delivery over a compacted Kafka topic
 * (src/delivery). It parses its own flags (main.ts hands it the arguments after `models`).
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { KafkaConfig } from '../config/kafka-config.ts';
import {
  DEFAULT_MODELS_TOPIC,
  deleteModelVersion,
  generateSigningKeyPair,
  loadSigningKey,
  loadTrustedKeys,
  publishControl,
  publishModel,
  readModelsTopic,
  readSignature,
} from '../delivery/index.ts';
import { listStatus } from './models-list-status.ts';
import { referenceProfileFile } from './models-profile.ts';
import { InflowError } from '../errors.ts';
import { createKafkaClient } from '../kafka/index.ts';
import type { KafkaClient } from '../kafka/types.ts';
import type { RoutingConfig } from '../repository/model-config.ts';
import { kafkaFromFlags } from './kafka-flags.ts';
import { commandFailed } from './cli-errors.ts';

export const modelsHelp = `inflow models publish|label|split|list|inspect|delete|keygen

Model delivery over Kafka: a version is published once to a compacted models topic, and every
pipeline, server and edge agent that syncs the topic installs it into its local model repository
(integrity-checked) and hot-swaps it. Label moves and splits are records on the same topic, so a
rollout or a rollback is one command.

Usage:
  inflow models publish <version-dir> --model <name> --version <n> [--config <file>] [--chunk-size <bytes>]
                       [--sign-key <ed25519 private key PEM>]
      every file under <version-dir>; the config is <version-dir>/../config.yaml unless --config names one;
      --reference-data <file> builds the version's reference profile (for drift: per-feature quantile bins,
      a sample, category counts) from JSON rows {"inputs": {...}, "outputs": {...}} and ships it as
      reference-profile.json; --categorical a,b names features to count as categories;
      --sign-key signs the manifest (files with sha256 and sizes, model, version, config); label, split and
      delete take --sign-key too (followers with trusted keys apply only signed label moves, splits, deletions)
  inflow models label <model> <label>=<version> …     move labels (label= removes one); other labels stay
  inflow models split <model> <v>=<weight>,… [--shadow <v>:<fraction>]
                                                      set the routing as a whole; "off" removes it
  inflow models list [--trusted-key <pub.pem> …] [--allow-executable] [--repository <dir>]
                      versions, sizes, publish times, labels, routing, signer, and whether a follower
                      with these keys takes each version (STATUS; the reasons below the table);
                      --repository: what the follower syncing <dir> installed or refused, and why
  inflow models inspect <model>                       one model: its versions' files (sha256), labels, routing
  inflow models delete <model> <version>              tombstones (refused while a label or split names it)
  inflow models keygen --out <path>                   a new Ed25519 key pair: <path>.key (private, keep it
                                                      with the publisher) and <path>.pub (for followers)
  inflow models rollout <model> --to <v> --steps 5,25,50,100 --interval 5m --metrics <url> …
                                                      a guarded rollout: the split moves step by step while
                                                      guards over live signals hold; a failing guard rolls back
                                                      (see rollout --help)
  inflow models backtest <model> --version <v> --baseline <v> --topic <input> --from <time|offset> [--labels <t>]
                                                      replays retained input records through both versions
                                                      (no consumer group: production offsets untouched) and
                                                      reports their metrics side by side (see backtest --help)
  inflow models import --savedmodel <dir> --model-repository <repo> --model <name>
                                                      a TensorFlow SavedModel as an ONNX version, same tensor
                                                      names (migrating from TF Serving; see import --help)

Options:
  --kafka <host:port,…>   the cluster (default $KAFKA_BOOTSTRAP_SERVERS)
  --kafka-config <file>   the cluster's connection settings (YAML: bootstrapServers, clientId,
                          sasl {mechanism, username, passwordFile}, ssl {caFile, certFile, keyFile});
                          --kafka overrides its bootstrapServers
  --topic <name>          the models topic (default ${DEFAULT_MODELS_TOPIC}; created compacted when missing)
  --json                  machine-readable output

Trust: whoever can write the models topic decides what followers install. Followers refuse
executable platforms (module) unless allowed, and with trusted keys install only signed versions
(inflow serve --models-trusted-key, pipeline/edge YAML modelsSync.trustedKeys); see
docs/model-delivery.md.

Examples:
  inflow models publish models/repository/digits-mlp/1 --model digits-mlp --version 2 --kafka 127.0.0.1:9092
  inflow models label digits-mlp stable=2 canary= --kafka 127.0.0.1:9092
  inflow models split digits-mlp 1=90,2=10 --shadow 2:0.05 --kafka 127.0.0.1:9092
  inflow models split digits-mlp off --kafka 127.0.0.1:9092
  inflow models list --kafka 127.0.0.1:9092
  inflow models keygen --out release
  inflow models publish models/repository/digits-mlp/1 --model digits-mlp --version 3 --sign-key release.key --kafka 127.0.0.1:9092
  inflow models list --trusted-key release.pub --kafka 127.0.0.1:9092
  inflow models inspect digits-mlp --kafka 127.0.0.1:9092 --json`;

/** What a test may replace. */
export interface ModelsCommandDeps {
  /** Used instead of a client for --kafka (and not closed). */
  client?: KafkaClient;
  err?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

const bad = (message: string): InflowError => new InflowError('INVALID_ARGUMENT', message);

function integer(text: string | undefined, what: string): number {
  if (text === undefined || !/^\d{1,16}$/.test(text)) throw bad(`${what}: expected a non-negative integer, got "${text ?? ''}"`);
  return Number(text);
}

/** `stable=2 canary=` → `{ stable: 2, canary: null }`. */
export function parseLabelMoves(args: readonly string[]): Record<string, number | null> {
  if (args.length === 0) throw bad('inflow models label: expected <label>=<version> after the model, e.g. stable=2');
  const moves: Record<string, number | null> = {};
  for (const arg of args) {
    const m = /^([^=]+)=(\d*)$/.exec(arg);
    if (!m) throw bad(`label move "${arg}": expected <label>=<version> (e.g. stable=2) or <label>= to remove it`);
    moves[m[1] as string] = m[2] === '' ? null : integer(m[2], `label "${m[1]}"`);
  }
  return moves;
}

/** `1=90,2=10` and `2:0.05` → routing; `off` → null. */
export function parseRouting(split: string | undefined, shadow: string | undefined): RoutingConfig | null {
  if (split === 'off') {
    if (shadow !== undefined) throw bad('"off" removes the routing; it takes no --shadow');
    return null;
  }
  if (split === undefined && shadow === undefined)
    throw bad('inflow models split: expected <version>=<weight>,… and/or --shadow <version>:<fraction>');
  const routing: RoutingConfig = {};
  if (split !== undefined) {
    routing.split = split.split(',').map((part) => {
      const m = /^(\d+)=(\d+(?:\.\d+)?)$/.exec(part.trim());
      if (!m) throw bad(`split "${part}": expected <version>=<weight>, e.g. 1=90,2=10`);
      return { version: integer(m[1], 'split version'), weight: Number(m[2]) };
    });
  }
  if (shadow !== undefined) {
    const m = /^(\d+):(\d*\.?\d+)$/.exec(shadow);
    const fraction = Number(m?.[2]);
    if (!m || !(fraction >= 0 && fraction <= 1)) throw bad(`--shadow "${shadow}": expected <version>:<fraction 0..1>, e.g. 2:0.05`);
    routing.shadow = { version: integer(m[1], 'shadow version'), fraction };
  }
  return routing;
}

async function defaultConfig(dir: string): Promise<string | undefined> {
  const candidate = join(dirname(resolve(dir)), 'config.yaml');
  return stat(candidate).then(
    (s) => (s.isFile() ? candidate : undefined),
    () => undefined,
  );
}

const humanBytes = (n: number): string =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

async function run(argv: string[], out: (line: string) => void, deps: ModelsCommandDeps): Promise<void> {
  // `import` (a TF SavedModel into a repository) has flags of its own and needs no cluster.
  if (argv[0] === 'import') return (await import('./models-import.ts')).modelsImport(argv.slice(1), out);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      json: { type: 'boolean' },
      verbose: { type: 'boolean' },
      kafka: { type: 'string' },
      'kafka-config': { type: 'string' },
      topic: { type: 'string' },
      model: { type: 'string' },
      version: { type: 'string' },
      config: { type: 'string' },
      'chunk-size': { type: 'string' },
      'reference-data': { type: 'string' },
      categorical: { type: 'string' },
      shadow: { type: 'string' },
      'sign-key': { type: 'string' },
      'trusted-key': { type: 'string', multiple: true },
      'allow-executable': { type: 'boolean' },
      repository: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const [action, ...args] = positionals;
  if (values.help || action === undefined) return out(modelsHelp);
  if (!['publish', 'label', 'split', 'list', 'inspect', 'delete', 'keygen'].includes(action)) {
    throw bad(`unknown action "${action}" for inflow models; expected publish, label, split, list, inspect, delete or keygen`);
  }
  const topic = values.topic ?? DEFAULT_MODELS_TOPIC;
  const print = (value: unknown, text: string): void =>
    out(values.json ? JSON.stringify(value, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) : text);
  const warn = (warnings: readonly string[]): void => {
    for (const w of warnings) (deps.err ?? ((line: string) => process.stderr.write(`${line}\n`)))(`inflow: warning: ${w}`);
  };
  if (action === 'keygen') {
    if (!values.out || args.length > 0) throw bad('inflow models keygen: expected --out <path> (writes <path>.key and <path>.pub)');
    const pair = generateSigningKeyPair();
    const [key, pub] = [`${values.out}.key`, `${values.out}.pub`];
    // 'wx': never overwrite a key (a lost private key cannot be recovered; followers trust the old one).
    await writeFile(key, pair.privateKeyPem, { flag: 'wx', mode: 0o600 }).catch((error: unknown) => {
      throw bad(
        `inflow models keygen: cannot write ${key} (${(error as NodeJS.ErrnoException).code ?? String(error)}); it is never overwritten`,
      );
    });
    await writeFile(pub, pair.publicKeyPem, { flag: 'wx' }).catch((error: unknown) => {
      throw bad(
        `inflow models keygen: cannot write ${pub} (${(error as NodeJS.ErrnoException).code ?? String(error)}); it is never overwritten`,
      );
    });
    return print(
      { id: pair.id, privateKey: key, publicKey: pub },
      `key ${pair.id}: private ${key} (publish with --sign-key ${key}), public ${pub} (give followers --models-trusted-key ${pub} or modelsSync.trustedKeys)`,
    );
  }
  const kafka = await kafkaFromFlags(
    { kafka: values.kafka, kafkaConfig: values['kafka-config'] },
    'inflow-models',
    (deps.env ?? process.env).KAFKA_BOOTSTRAP_SERVERS,
  );
  if (!deps.client && !kafka) {
    throw bad('inflow models needs the cluster: --kafka host:port, --kafka-config <file> or KAFKA_BOOTSTRAP_SERVERS');
  }
  if (values['sign-key'] !== undefined && !['publish', 'label', 'split', 'delete'].includes(action)) {
    throw bad(`--sign-key signs what publish, label, split and delete write; "${action}" writes nothing`);
  }
  const signingKey = values['sign-key'] === undefined ? undefined : await loadSigningKey(values['sign-key']);
  const signed = signingKey ? { signingKey } : {};
  const client = deps.client ?? createKafkaClient(kafka as KafkaConfig);
  try {
    switch (action) {
      case 'publish': {
        const [dir, ...extra] = args;
        if (!dir || extra.length > 0) throw bad('inflow models publish: expected one <version-dir>, e.g. models/repository/digits-mlp/1');
        if (!values.model) throw bad(`inflow models publish: --model is required (e.g. --model ${basename(dirname(resolve(dir)))})`);
        const version = integer(values.version, '--version');
        const configPath = values.config ?? (await defaultConfig(dir));
        const config =
          configPath === undefined
            ? undefined
            : await readFile(configPath, 'utf8').catch((error: unknown) => {
                throw bad(`--config ${configPath}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
              });
        const chunkSize = values['chunk-size'] === undefined ? undefined : integer(values['chunk-size'], '--chunk-size');
        const profile =
          values['reference-data'] === undefined
            ? undefined
            : await referenceProfileFile(values['reference-data'], values.categorical?.split(',').filter((c) => c !== '') ?? []);
        if (values.categorical !== undefined && profile === undefined)
          throw bad('--categorical names features of --reference-data; give that too');
        const started = performance.now();
        const r = await publishModel({
          client,
          topic,
          modelDir: dir,
          model: values.model,
          version,
          ...(config === undefined ? {} : { config }),
          ...(chunkSize ? { chunkSize } : {}),
          ...(signingKey ? { signingKey } : {}),
          ...(profile ? { extraFiles: [profile.file] } : {}),
        });
        const ms = Math.round(performance.now() - started);
        const files = r.manifest.files.length;
        return print(
          {
            ...r.manifest,
            partition: r.partition,
            offset: r.offset,
            chunks: r.chunks,
            bytes: r.bytes,
            ms,
            configFile: configPath ?? null,
            signedBy: r.signedBy ?? null,
          },
          `published ${values.model} version ${version}: ${files} file${files === 1 ? '' : 's'}, ${humanBytes(r.bytes)} in ${r.chunks} chunk${r.chunks === 1 ? '' : 's'}, ` +
            `${configPath ? `config from ${configPath}` : 'no config.yaml (readers keep theirs)'}${profile ? `, ${profile.summary}` : ''}${r.signedBy ? `, signed by key ${r.signedBy}` : ', unsigned'}; topic ${topic} partition ${r.partition} offset ${r.offset} (${ms} ms)`,
        );
      }
      case 'label': {
        const [model, ...moves] = args;
        if (!model) throw bad('inflow models label: expected <model> <label>=<version> …');
        const r = await publishControl({ client, topic, model, labels: parseLabelMoves(moves), ...signed });
        const labels = Object.entries(r.control.labels ?? {}).map(([l, v]) => `${l}=${v}`);
        print(
          { ...r.control, warnings: r.warnings },
          `${model}: labels ${labels.length > 0 ? labels.join(' ') : '(none)'} (topic ${topic} offset ${r.offset})`,
        );
        return warn(r.warnings);
      }
      case 'split': {
        const [model, spec, ...extra] = args;
        if (!model || extra.length > 0)
          throw bad('inflow models split: expected <model> <version>=<weight>,… [--shadow <version>:<fraction>]');
        const routing = parseRouting(spec, values.shadow);
        const r = await publishControl({ client, topic, model, routing, ...signed });
        print(
          { ...r.control, warnings: r.warnings },
          `${model}: routing ${routing === null ? 'removed' : JSON.stringify(routing)} (topic ${topic} offset ${r.offset})`,
        );
        return warn(r.warnings);
      }
      case 'delete': {
        const [model, versionText, ...extra] = args;
        if (!model || extra.length > 0) throw bad('inflow models delete: expected <model> <version>');
        const version = integer(versionText, 'version');
        const r = await deleteModelVersion({ client, topic, model, version, ...signed });
        return print({ model, version, ...r }, `${model} version ${version} deleted (${r.tombstones} tombstones in ${topic})`);
      }
      case 'inspect': {
        const [model, ...extra] = args;
        if (!model || extra.length > 0) throw bad('inflow models inspect: expected one <model>');
        const content = await readModelsTopic({ client, topic });
        const versions = content.manifests
          .filter((e) => e.manifest.model === model)
          .sort((a, b) => a.manifest.version - b.manifest.version);
        const control = content.controls.get(model);
        if (versions.length === 0 && !control)
          throw new InflowError('NOT_FOUND', `model ${model} has nothing in topic ${topic}; see inflow models list`);
        const latest = versions.at(-1)?.manifest;
        const labels = control?.labels ?? ((latest?.config?.labels ?? {}) as Record<string, number>);
        const routing = control?.routing !== undefined ? control.routing : (latest?.config?.routing ?? null);
        const lines = [
          `${model} in ${topic}`,
          `  labels:  ${
            Object.entries(labels)
              .map(([l, v]) => `${l}=${v}`)
              .join(' ') || '(none)'
          }`,
          `  routing: ${routing ? JSON.stringify(routing) : '(none: the latest version answers)'}`,
        ];
        for (const { manifest: m, partition, offset, headers } of versions) {
          const signer = readSignature(headers)?.keyId;
          lines.push(
            `  version ${m.version}: published ${m.publishedAt} by ${m.publisher} (partition ${partition} offset ${offset}), config.yaml ${m.config ? 'shipped' : 'not shipped'}, ${signer ? `signed by key ${signer} (not verified here)` : 'unsigned'}`,
          );
          for (const f of m.files) lines.push(`    ${f.path}  ${humanBytes(f.size)}  sha256 ${f.sha256}`);
        }
        return print(
          {
            model,
            labels,
            routing,
            versions: versions.map((e) => ({
              ...e.manifest,
              partition: e.partition,
              offset: e.offset,
              signedBy: readSignature(e.headers)?.keyId ?? null,
            })),
          },
          lines.join('\n'),
        );
      }
      default: {
        if (args.length > 0) throw bad(`inflow models list: takes no arguments, got "${args.join(' ')}"`);
        const trustedKeys = await loadTrustedKeys(values['trusted-key'] ?? []);
        const content = await readModelsTopic({ client, topic });
        const statuses = await listStatus(content.manifests, {
          trustedKeys,
          allowExecutable: values['allow-executable'] ?? false,
          ...(values.repository === undefined ? {} : { repository: values.repository }),
        });
        const labelsOf = (model: string, version: number): string => {
          const control = content.controls.get(model);
          const latest = content.manifests
            .filter((e) => e.manifest.model === model)
            .sort((a, b) => (a.offset < b.offset ? -1 : 1))
            .at(-1);
          const labels = control?.labels ?? ((latest?.manifest.config?.labels ?? {}) as Record<string, number>);
          return Object.entries(labels)
            .filter(([, v]) => v === version)
            .map(([l]) => l)
            .join(',');
        };
        const rows = content.manifests.map(({ manifest: m }, i) => [
          m.model,
          String(m.version),
          String(m.files.length),
          humanBytes(m.files.reduce((s, f) => s + f.size, 0)),
          m.publishedAt,
          m.publisher,
          labelsOf(m.model, m.version) || '-',
          statuses[i]?.signedBy ?? '-',
          statuses[i]?.status ?? '',
        ]);
        const routing = [...content.controls]
          .filter(([, c]) => c.routing)
          .map(([model, c]) => `${model} routing: ${JSON.stringify(c.routing)}`);
        const lines =
          rows.length === 0
            ? [`no model versions in topic ${topic}`]
            : [...table([['MODEL', 'VERSION', 'FILES', 'SIZE', 'PUBLISHED', 'BY', 'LABELS', 'SIGNED', 'STATUS'], ...rows]), ...routing];
        for (const [i, st] of statuses.entries()) {
          const m = content.manifests[i]?.manifest;
          if (m && st.reason) lines.push(`${m.model} version ${m.version} ${st.status}: ${st.reason}`);
        }
        for (const i of content.invalid) lines.push(`unreadable record ${i.key}: ${i.reason}`);
        return print(
          {
            manifests: content.manifests.map((e, i) => ({ ...e.manifest, trust: statuses[i] })),
            controls: Object.fromEntries(content.controls),
            invalid: content.invalid,
          },
          lines.join('\n'),
        );
      }
    }
  } finally {
    if (!deps.client) await client.close();
  }
}

/** Runs `inflow models …` (the arguments after `models`); returns the exit code. */
export async function modelsMain(argv: string[], out: (line: string) => void, deps: ModelsCommandDeps = {}): Promise<number> {
  const err = deps.err ?? ((line: string) => process.stderr.write(`${line}\n`));
  // `rollout` runs until promoted or rolled back, and its exit code says which.
  if (argv[0] === 'rollout') return (await import('./models-rollout.ts')).modelsRollout(argv.slice(1), out, deps);
  if (argv[0] === 'backtest') {
    try {
      await (await import('./models-backtest.ts')).modelsBacktest(argv.slice(1), out, deps);
      return 0;
    } catch (error) {
      return commandFailed(error, argv, err);
    }
  }
  try {
    await run(argv, out, deps);
    return 0;
  } catch (error) {
    return commandFailed(error, argv, err);
  }
}
