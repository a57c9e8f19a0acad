/**
 * `inflow monitor <monitor.yaml>`: the live drift monitor (src/monitoring/drift-monitor.ts) as a
 * long-running command, with its metrics on --metrics-port. SIGINT/SIGTERM stop it.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { loadConfigFile } from '../config/load-config.ts';
import { createModelSync } from '../delivery/index.ts';
import { InflowError } from '../errors.ts';
import { createKafkaClient } from '../kafka/index.ts';
import { createAccuracyMonitor } from '../monitoring/accuracy-monitor.ts';
import { createDriftMonitor } from '../monitoring/drift-monitor.ts';
import { monitorConfigSchema } from '../monitoring/monitor-config.ts';
import { commandFailed } from './cli-errors.ts';

export const monitorHelp = `inflow monitor <monitor.yaml> [--kafka host:port] [--metrics-port <n>] [--json]

Watches a prediction log (a pipeline's predictionLog with includeInputs: true) for drift: tumbling
windows of record time per model version, compared with the version's reference profile
(reference-profile.json, shipped by inflow models publish --reference-data): PSI and KS per
numeric feature, PSI, chi-square and Jensen–Shannon per categorical one, outputs too (prediction
drift). A report per window goes to the monitoring topic, an alert per threshold crossed to the
alerts topic (inflow models rollout's drift guard reads it); a version without a profile is
reported as "drift unavailable". The file:

  predictionLog: digits-predictions
  modelRepository: /var/lib/inflow/models   # where each version's reference-profile.json is
  modelsTopic: inflow-models                # optional: sync it into modelRepository
  windowMs: 60000
  models:
    digits-mlp: { drift: { psi: 0.25, ksPValue: 0.001, minSamples: 200 } }
  accuracy:                                 # optional: live accuracy from late labels
    labelsTopic: digits-labels              # JSON values, e.g. {"label": 3}, keyed by the input's key
    id: { prediction: key, label: key }     # or requestId / a path into the entry or the label
    prediction: outputs.label
    probabilities: outputs.probabilities    # optional: log-loss
    windowMs: 60000
    labelWindowMs: 600000                   # a label counts up to this long after its prediction

With accuracy:, labels are joined with their predictions per version and window of prediction
time: accuracy, precision/recall/F1 per class, log-loss and confusion counts (task:
classification) or MAE and RMSE (task: regression), label delay and the share still unlabelled,
to the monitoring topic (exactly once); bad labels go to accuracy.deadLetterTopic with the reason.

Metrics: inflow_drift_statistic, inflow_drift_alerts_total, inflow_drift_unavailable,
inflow_live_accuracy (what inflow models rollout --max-accuracy-drop reads), inflow_live_log_loss,
inflow_live_class_metric, inflow_live_mae, inflow_live_rmse, inflow_live_unlabelled_ratio,
inflow_live_label_delay_seconds, inflow_live_labels_total.`;

export async function monitorMain(argv: string[], out: (line: string) => void): Promise<number> {
  const json = argv.includes('--json');
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        json: { type: 'boolean' },
        kafka: { type: 'string' },
        'metrics-port': { type: 'string' },
      },
    });
    if (values.help) {
      out(monitorHelp);
      return 0;
    }
    const [file, ...extra] = positionals;
    if (!file || extra.length > 0) throw new InflowError('INVALID_ARGUMENT', 'inflow monitor: expected one <monitor.yaml>');
    const config = await loadConfigFile(monitorConfigSchema, file);
    const servers = values.kafka?.split(',') ?? config.kafka?.bootstrapServers ?? process.env.KAFKA_BOOTSTRAP_SERVERS?.split(',');
    if (!servers || servers.length === 0) {
      throw new InflowError(
        'INVALID_ARGUMENT',
        'inflow monitor needs the cluster: --kafka host:port, kafka: in the file, or KAFKA_BOOTSTRAP_SERVERS',
      );
    }
    const client = createKafkaClient({
      ...(config.kafka ?? {}),
      bootstrapServers: servers,
      clientId: config.kafka?.clientId ?? 'inflow-monitor',
    });
    const registry = new Registry();
    const abort = new AbortController();
    const stop = (): void => abort.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const sync = config.modelsTopic
      ? createModelSync({ client, topic: config.modelsTopic, repository: config.modelRepository })
      : undefined;
    let server: ReturnType<typeof createServer> | undefined;
    try {
      await sync?.start();
      if (values['metrics-port'] !== undefined) {
        const port = Number(values['metrics-port']);
        if (!Number.isInteger(port) || port < 0 || port > 65535)
          throw new InflowError('INVALID_ARGUMENT', `--metrics-port: expected 0-65535, got "${values['metrics-port']}"`);
        server = createServer((_, res) => {
          void registry.metrics().then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text));
        });
        await new Promise<void>((resolve) => server?.listen(port, resolve));
      }
      const monitor = createDriftMonitor({
        client,
        config,
        registry,
        onReport: (r) =>
          out(
            json
              ? JSON.stringify(r)
              : r.unavailable
                ? `${r.model} v${r.version} window ${new Date(r.window.start).toISOString()}: ${r.predictions} predictions; ${r.unavailable}`
                : `${r.model} v${r.version} window ${new Date(r.window.start).toISOString()}: ${r.predictions} predictions, ${r.alerts ?? 0} drift alert(s)`,
          ),
      });
      const accuracy = config.accuracy
        ? createAccuracyMonitor({
            client,
            predictionLog: config.predictionLog,
            groupId: config.groupId,
            monitoringTopic: config.monitoringTopic,
            accuracy: config.accuracy,
            registry,
            onReport: (r) =>
              out(
                json
                  ? JSON.stringify(r)
                  : `${r.model} v${r.version} window ${new Date(r.window.start).toISOString()}: ${r.labelled}/${r.predictions} labelled` +
                      (r.classification ? `, accuracy ${(r.classification.accuracy * 100).toFixed(1)} %` : '') +
                      (r.regression ? `, MAE ${r.regression.mae.toPrecision(4)}, RMSE ${r.regression.rmse.toPrecision(4)}` : ''),
              ),
          })
        : undefined;
      // One failing stops the other: a monitor half running would look healthy.
      const both = [monitor.run(abort.signal), ...(accuracy ? [accuracy.run(abort.signal)] : [])].map((p) =>
        p.catch((error: unknown) => {
          abort.abort();
          throw error;
        }),
      );
      await Promise.all(both);
      return 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server?.close();
      await sync?.close();
      await client.close();
    }
  } catch (error) {
    return commandFailed(error, argv);
  }
}
