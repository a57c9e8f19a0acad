/**
 * The Helm chart (deploy/helm/inflow), validated with no cluster: helm lint --strict, helm
 * template of every example, every rendered object against the Kubernetes / KEDA / CRD schemas
 * with unknown fields rejected, the wiring of each pod shape, the prepare step, and bad values
 * failing at template time with a message that names the value.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse, parseAllDocuments } from 'yaml';
import { type KafkaConfig, kafkaConfigSchema } from '../../src/config/kafka-config.ts';
import { validateConfig } from '../../src/config/load-config.ts';
import { connectionOptions } from '../../src/kafka/platformatic/connection-options.ts';
import { validatePipelineConfig } from '../../src/streams/pipeline/index.ts';
import { helm, repoRoot } from './helm-binary.ts';
import { kindKey, validateObject } from './manifest-schemas.ts';

const run = promisify(execFile);
const chart = join(repoRoot, 'deploy/helm/inflow');
const examplesDir = join(chart, 'examples');
const examples = readdirSync(examplesDir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
// The chart needs Kubernetes 1.30+ (native sidecars, the preStop sleep action).
const TEMPLATE_FLAGS = ['--kube-version', '1.31.0'];

/** A rendered object: its spec / data are read in the shape each test expects. */
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec?: unknown;
  data?: Record<string, string>;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  restartPolicy?: string;
  ports?: { name: string; containerPort: number }[];
  env?: { name: string; value?: string }[];
  startupProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
  livenessProbe?: { httpGet: { path: string; port: string } };
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  initContainers?: Container[];
  containers: Container[];
  volumes: ({ name: string } & Record<string, unknown>)[];
  securityContext: { runAsNonRoot?: boolean };
  automountServiceAccountToken?: boolean;
  terminationGracePeriodSeconds?: number;
}

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'inflow-helm-test-'));
});
after(() => {
  rmSync(work, { recursive: true, force: true });
});

/** helm template with the given values files (paths) or values objects (written as JSON). */
async function render(...values: (string | object)[]): Promise<{ code: number; objects: K8sObject[]; stderr: string }> {
  const files = values.map((v, i) => {
    if (typeof v === 'string') return v;
    const file = join(work, `values-${Date.now()}-${i}-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(v));
    return file;
  });
  const r = await helm(['template', 'rel', chart, ...TEMPLATE_FLAGS, ...files.flatMap((f) => ['-f', f])]);
  const objects = r.code === 0 ? parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject | null) : [];
  return { code: r.code, stderr: r.stderr, objects: objects.filter((o): o is K8sObject => o !== null) };
}

function find(objects: K8sObject[], kind: string, name?: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.ok(found, `no ${kind}${name ? ` ${name}` : ''} among ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}
const podSpec = (deployment: K8sObject): PodSpec => (deployment.spec as { template: { spec: PodSpec } }).template.spec;
const env = (c: Container, name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;
const pipelineOf = (objects: K8sObject[]): Record<string, unknown> =>
  parse(find(objects, 'ConfigMap', 'rel-inflow-pipeline').data?.['pipeline.yaml'] ?? '') as Record<string, unknown>;
const example = (name: string): string => join(examplesDir, name);

describe('the Helm chart deploy/helm/inflow', () => {
  it('has the standalone, self-contained, sidecar and kserve examples', () => {
    assert.deepEqual(examples, ['kserve.yaml', 'self-contained.yaml', 'sidecar.yaml', 'standalone.yaml']);
  });

  it('passes helm lint --strict with its default values and with every example', async () => {
    for (const values of [undefined, ...examples]) {
      const r = await helm(['lint', '--strict', chart, ...(values ? ['-f', example(values)] : [])]);
      assert.equal(r.code, 0, `helm lint --strict ${values ?? '(defaults)'}:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    }
  });

  it('renders every example into objects that pass their Kubernetes, KEDA or CRD schema with no unknown field', async () => {
    const kinds = new Set<string>();
    for (const values of [undefined, ...examples]) {
      const r = await render(...(values ? [example(values)] : []));
      assert.equal(r.code, 0, `helm template ${values ?? '(defaults)'}: ${r.stderr}`);
      assert.ok(r.objects.length > 0);
      for (const object of r.objects) {
        kinds.add(kindKey(object));
        const problems = await validateObject(object);
        assert.deepEqual(problems, [], `${values ?? '(defaults)'}: ${object.kind} ${object.metadata.name}`);
      }
    }
    // Every kind the chart can render was seen (and so validated) in some example.
    assert.deepEqual([...kinds].sort(), [
      'apps/v1/Deployment',
      'autoscaling/v2/HorizontalPodAutoscaler',
      'kafka.strimzi.io/v1beta2/KafkaTopic',
      'keda.sh/v1alpha1/ScaledObject',
      'keda.sh/v1alpha1/TriggerAuthentication',
      'policy/v1/PodDisruptionBudget',
      'serving.kserve.io/v1alpha1/ClusterServingRuntime',
      'v1/ConfigMap',
      'v1/Secret',
      'v1/Service',
      'v1/ServiceAccount',
    ]);
  });

  it('renders each pod shape with each model source it supports into valid objects', async () => {
    const sources: Record<string, object> = {
      image: { models: { source: 'image', volume: null } },
      'image, threads off': { models: { source: 'image', volume: null, onnxThreads: 'off' } },
      initContainer: { models: { source: 'initContainer', volume: null, initContainer: { image: { repository: 'models', tag: '1' } } } },
      volume: { models: { source: 'volume', volume: { persistentVolumeClaim: { claimName: 'm' } } } },
      'volume, 3 threads': { models: { source: 'volume', volume: { persistentVolumeClaim: { claimName: 'm' } }, onnxThreads: 3 } },
      kafka: {
        models: { source: 'kafka', volume: null },
        server: { kafkaEndpoint: { enabled: true } },
        kafka: { sasl: { enabled: false }, tls: { enabled: false } },
      },
    };
    const shapes: Record<string, string> = {
      standalone: 'standalone.yaml',
      'self-contained': 'self-contained.yaml',
      sidecar: 'sidecar.yaml',
    };
    let rendered = 0;
    for (const [shape, file] of Object.entries(shapes)) {
      for (const [source, values] of Object.entries(sources)) {
        if (shape === 'sidecar' && source === 'kafka') continue; // rejected on purpose (see the bad values)
        const extra =
          shape === 'standalone' && source === 'kafka' ? { kafka: { bootstrapServers: ['kafka:9092'] }, server: { workers: 1 } } : {};
        const r = await render(example(file), values, extra);
        assert.equal(r.code, 0, `${shape} with models from ${source}: ${r.stderr}`);
        for (const object of r.objects) {
          assert.deepEqual(await validateObject(object), [], `${shape} with models from ${source}: ${object.kind} ${object.metadata.name}`);
        }
        const deployment = find(r.objects, 'Deployment');
        const mounts = [...(podSpec(deployment).initContainers ?? []), ...podSpec(deployment).containers].flatMap(
          (c) => c.volumeMounts ?? [],
        );
        const volumes = new Set(podSpec(deployment).volumes.map((v) => v.name));
        for (const m of mounts) assert.ok(volumes.has(m.name), `${shape}/${source}: mount of the missing volume ${m.name}`);
        rendered++;
      }
    }
    assert.equal(rendered, 17);
  });

  it('would catch a wrong type, an unknown field and a CRD violation (the validators can fail)', async () => {
    const { objects } = await render(example('sidecar.yaml'));
    const deployment = structuredClone(find(objects, 'Deployment'));
    const spec = podSpec(deployment);
    (spec.containers[0] as unknown as Record<string, unknown>).imagePullPolcy = 'Always';
    (spec.initContainers?.[1]?.ports?.[0] as unknown as Record<string, unknown>).containerPort = 'http';
    const problems = await validateObject(deployment);
    assert.ok(
      problems.some((p) => p.includes('/containers/0/imagePullPolcy unknown field')),
      problems.join('\n'),
    );
    assert.ok(
      problems.some((p) => p.includes('containerPort')),
      problems.join('\n'),
    );
    const topic = structuredClone(find((await render(example('self-contained.yaml'))).objects, 'KafkaTopic'));
    (topic.spec as Record<string, unknown>).replica = 3;
    (topic.spec as Record<string, unknown>).partitions = 0;
    const topicProblems = await validateObject(topic);
    assert.ok(
      topicProblems.some((p) => p.includes('additionalProperty') && p.includes('replica')),
      topicProblems.join('\n'),
    );
    assert.ok(
      topicProblems.some((p) => p.includes('/spec/partitions')),
      topicProblems.join('\n'),
    );
  });

  it('runs every container hardened: non-root, read-only root filesystem, no privilege escalation, requests set', async () => {
    for (const values of examples.filter((e) => e !== 'kserve.yaml')) {
      const { objects } = await render(example(values));
      for (const deployment of objects.filter((o) => o.kind === 'Deployment')) {
        const spec = podSpec(deployment);
        assert.equal(spec.securityContext.runAsNonRoot, true);
        assert.equal(spec.automountServiceAccountToken, false);
        for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${values} ${c.name}`);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${values} ${c.name}`);
          assert.ok(c.resources?.requests?.memory, `${values} ${c.name}: memory request`);
          assert.doesNotMatch(c.image, /:latest$/, `${values} ${c.name}`);
        }
        assert.ok(spec.volumes.some((v) => v.name === 'tmp'));
      }
    }
  });

  it('wires the sidecar pod: the model server is a native sidecar with probes, and the stream calls it on localhost', async () => {
    const { objects } = await render(example('sidecar.yaml'));
    const spec = podSpec(find(objects, 'Deployment', 'rel-inflow-stream'));
    assert.deepEqual(
      spec.initContainers?.map((c) => c.name),
      ['prepare', 'model-server'],
    );
    const server = spec.initContainers?.find((c) => c.name === 'model-server');
    assert.ok(server);
    // Native sidecar: an init container that keeps running, started before the stream container.
    assert.equal(server.restartPolicy, 'Always');
    assert.equal(server.image, 'registry.example.com/inflow:0.1.0');
    assert.deepEqual(server.args?.slice(0, 7), ['serve', '--model-repository', '/models', '--rest-port', '8501', '--grpc-port', '8500']);
    assert.deepEqual(
      server.ports?.map((p) => [p.name, p.containerPort]),
      [
        ['http', 8501],
        ['grpc', 8500],
      ],
    );
    assert.deepEqual(server.startupProbe?.httpGet, { path: '/v2/health/ready', port: 'http' });
    assert.deepEqual(server.readinessProbe?.httpGet, { path: '/v2/health/ready', port: 'http' });
    assert.deepEqual(server.livenessProbe?.httpGet, { path: '/v2/health/live', port: 'http' });
    assert.equal(env(server, 'ORT_DISABLE_TELEMETRY'), '1');
    assert.ok(server.volumeMounts?.some((m) => m.name === 'models' && m.mountPath === '/models' && m.readOnly === true));

    assert.equal(spec.containers.length, 1);
    const stream = spec.containers[0] as Container;
    assert.equal(stream.name, 'stream');
    assert.deepEqual(stream.args, ['stream', '/config/pipeline.yaml', '--metrics-port', '9464']);
    assert.equal(env(stream, 'ORT_DISABLE_TELEMETRY'), '1');
    assert.ok(stream.volumeMounts?.some((m) => m.name === 'config' && m.mountPath === '/config'));
    // The embedded fallback reads the same repository as the sidecar.
    assert.ok(stream.volumeMounts?.some((m) => m.name === 'models' && m.mountPath === '/models'));

    const pipeline = pipelineOf(objects);
    const models = pipeline.models as Record<
      string,
      { remote?: { url: string; protocol: string }; embedded?: { modelRepository: string } }
    >;
    assert.equal(models.server?.remote?.url, '127.0.0.1:8500');
    assert.equal(models.local?.embedded?.modelRepository, '/models');
    assert.deepEqual((pipeline.kafka as { bootstrapServers: string[] }).bootstrapServers, [
      'kafka-0.kafka:9092',
      'kafka-1.kafka:9092',
      'kafka-2.kafka:9092',
    ]);
    // What the chart writes is a pipeline inflow accepts.
    assert.equal(validatePipelineConfig(pipeline, 'sidecar ConfigMap').applicationId, 'digits-scorer-sidecar');
    // No Service and no server Deployment in sidecar mode: the server is private to its pod.
    assert.ok(!objects.some((o) => o.kind === 'Service'));
    assert.equal(objects.filter((o) => o.kind === 'Deployment').length, 1);
  });

  it('points a REST remote source at the sidecar REST port', async () => {
    const { objects } = await render(example('sidecar.yaml'), {
      server: { restPort: 9001 },
      stream: { pipeline: { models: { server: { remote: { protocol: 'oip-rest' } } } } },
    });
    const models = pipelineOf(objects).models as Record<string, { remote: { url: string } }>;
    assert.equal(models.server?.remote.url, 'http://127.0.0.1:9001');
  });

  it('renders the self-contained pod with the model embedded, KEDA on lag up to the partitions, and credentials only from Secrets', async () => {
    const { objects } = await render(example('self-contained.yaml'));
    const spec = podSpec(find(objects, 'Deployment', 'rel-inflow-stream'));
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ['stream'],
    );
    assert.ok(!spec.initContainers?.some((c) => c.restartPolicy === 'Always'), 'no sidecar');
    assert.equal((find(objects, 'Deployment').spec as { replicas?: number }).replicas, undefined, 'KEDA owns replicas');

    const scaled = find(objects, 'ScaledObject').spec as {
      scaleTargetRef: { name: string };
      minReplicaCount: number;
      maxReplicaCount: number;
      advanced: { horizontalPodAutoscalerConfig: { behavior: { scaleDown: { stabilizationWindowSeconds: number } } } };
      triggers: { type: string; metadata: Record<string, string>; authenticationRef: { name: string } }[];
    };
    assert.equal(scaled.scaleTargetRef.name, 'rel-inflow-stream');
    assert.equal(scaled.maxReplicaCount, 12);
    assert.equal(scaled.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds, 300);
    const trigger = scaled.triggers[0];
    assert.equal(trigger?.type, 'kafka');
    assert.deepEqual(
      {
        consumerGroup: trigger.metadata.consumerGroup,
        topic: trigger.metadata.topic,
        sasl: trigger.metadata.sasl,
        tls: trigger.metadata.tls,
        allowIdleConsumers: trigger.metadata.allowIdleConsumers,
      },
      { consumerGroup: 'digits-scorer', topic: 'digits', sasl: 'scram_sha512', tls: 'enable', allowIdleConsumers: 'false' },
    );
    assert.equal(trigger.authenticationRef.name, 'rel-inflow-kafka');

    const pipeline = pipelineOf(objects);
    const text = JSON.stringify(pipeline);
    assert.doesNotMatch(text, /password|BEGIN CERTIFICATE/);
    assert.deepEqual((pipeline.models as { local: unknown }).local, {
      embedded: { modelRepository: '/models', modelsTopic: 'inflow-models' },
    });
    validatePipelineConfig(pipeline, 'self-contained ConfigMap');
    const topics = objects.filter((o) => o.kind === 'KafkaTopic').map((o) => (o.spec as { topicName: string }).topicName);
    assert.deepEqual(topics, ['digits', 'digits-scored', 'digits-dlq', 'inflow-models']);
  });

  it('renders the standalone server with probes, a preStop sleep, a PDB, an HPA and onnxruntime threads from its CPU request', async () => {
    const { objects } = await render(example('standalone.yaml'));
    const deployment = find(objects, 'Deployment', 'rel-inflow-server');
    assert.equal((deployment.spec as { replicas?: number }).replicas, undefined, 'the HPA owns replicas');
    const spec = podSpec(deployment);
    const server = spec.containers[0] as Container;
    assert.equal(server.lifecycle?.preStop?.sleep?.seconds, 5);
    assert.ok((spec.terminationGracePeriodSeconds ?? 0) > 5);
    assert.deepEqual(server.startupProbe?.httpGet, { path: '/v2/health/ready', port: 'http' });
    assert.deepEqual(server.livenessProbe?.httpGet, { path: '/v2/health/live', port: 'http' });
    assert.ok(server.args?.includes('--workers'));
    assert.ok(server.env?.some((e) => e.name === 'INFLOW_AUTH_TOKEN'));
    // Models: the model image fills the emptyDir, then prepare writes the threads: 2 cores / 2 workers.
    assert.deepEqual(
      spec.initContainers?.map((c) => c.name),
      ['models', 'prepare'],
    );
    assert.deepEqual(spec.initContainers?.[0]?.command, ['cp', '-R', '/models/.', '/scratch/models/']);
    assert.equal(env(spec.initContainers?.[1] as Container, 'PREPARE_ONNX_THREADS'), '1');
    assert.equal((find(objects, 'PodDisruptionBudget').spec as { maxUnavailable: number }).maxUnavailable, 1);
    assert.equal((find(objects, 'HorizontalPodAutoscaler').spec as { maxReplicas: number }).maxReplicas, 12);
    const service = { spec: find(objects, 'Service').spec as { ports: { name: string; port: number }[] } };
    assert.deepEqual(
      service.spec.ports.map((p) => [p.name, p.port]),
      [
        ['http', 8501],
        ['grpc', 8500],
      ],
    );
  });

  it('renders the KServe runtime: kserve-container over /mnt/models, protocols v1, v2 and grpc-v2', async () => {
    const { objects } = await render(example('kserve.yaml'));
    assert.deepEqual(
      objects.map((o) => o.kind),
      ['ClusterServingRuntime'],
    );
    const runtime = {
      spec: objects[0]?.spec as { protocolVersions: string[]; supportedModelFormats: { name: string }[]; containers: Container[] },
    };
    assert.deepEqual(runtime.spec.protocolVersions, ['v1', 'v2', 'grpc-v2']);
    assert.equal(runtime.spec.supportedModelFormats[0]?.name, 'onnx');
    assert.equal(runtime.spec.containers[0]?.name, 'kserve-container');
    assert.deepEqual(runtime.spec.containers[0]?.args?.slice(0, 3), ['serve', '--model-repository', '/mnt/models']);
  });

  it('lets KServe pick the runtime by name by default, autoSelects only at a priority other than the stock 1, and serves the InferenceService name', async () => {
    type Runtime = { spec: { supportedModelFormats: { autoSelect?: boolean; priority?: number }[]; containers: Container[] } };
    const byName = (await render(example('kserve.yaml'))).objects[0] as unknown as Runtime;
    assert.deepEqual(byName.spec.supportedModelFormats[0], { name: 'onnx', version: '1', autoSelect: false });
    // KServe substitutes {{.Name}}: inflow loads only that model of /mnt/models, the one clients call.
    assert.deepEqual(byName.spec.containers[0]?.args?.slice(-2), ['--model', '{{.Name}}']);
    const auto = await render(example('kserve.yaml'), { kserve: { autoSelect: true, priority: 3, modelName: '' } });
    const runtime = auto.objects[0] as unknown as Runtime & K8sObject;
    assert.deepEqual(runtime.spec.supportedModelFormats[0], { name: 'onnx', version: '1', autoSelect: true, priority: 3 });
    assert.ok(!runtime.spec.containers[0]?.args?.includes('--model'), 'modelName "" serves every model folder');
    assert.deepEqual(await validateObject(runtime), []);
    const clash = await render(example('kserve.yaml'), { kserve: { autoSelect: true, priority: 1 } });
    assert.notEqual(clash.code, 0);
    assert.match(clash.stderr, /kserve\.priority 1 with kserve\.autoSelect: KServe's stock kserve-tritonserver/);
  });

  it('gives stream pods --metrics-port, probes on /readyz and /healthz and scrape annotations, in both stream shapes', async () => {
    for (const file of ['self-contained.yaml', 'sidecar.yaml']) {
      const deployment = find((await render(example(file))).objects, 'Deployment', 'rel-inflow-stream');
      const annotations = (deployment.spec as { template: { metadata: { annotations: Record<string, string> } } }).template.metadata
        .annotations;
      assert.equal(annotations['prometheus.io/scrape'], 'true', file);
      assert.equal(annotations['prometheus.io/port'], '9464', file);
      assert.equal(annotations['prometheus.io/path'], '/metrics', file);
      const stream = podSpec(deployment).containers.find((c) => c.name === 'stream');
      assert.ok(stream);
      assert.deepEqual(stream.args?.slice(0, 4), ['stream', '/config/pipeline.yaml', '--metrics-port', '9464'], file);
      assert.deepEqual(
        stream.ports?.map((p) => [p.name, p.containerPort]),
        [['metrics', 9464]],
      );
      assert.deepEqual(stream.startupProbe?.httpGet, { path: '/readyz', port: 'metrics' });
      assert.deepEqual(stream.readinessProbe?.httpGet, { path: '/readyz', port: 'metrics' });
      assert.deepEqual(stream.livenessProbe?.httpGet, { path: '/healthz', port: 'metrics' });
    }
    const off = find(
      (await render(example('self-contained.yaml'), { stream: { metricsPort: 0 } })).objects,
      'Deployment',
      'rel-inflow-stream',
    );
    const stream = podSpec(off).containers[0];
    assert.ok(stream && !stream.readinessProbe && !stream.ports && !stream.args?.includes('--metrics-port'));
  });

  it("gives the server's Kafka endpoint SASL and TLS from Secrets through --kafka-config, which inflow reads", async () => {
    const values = [
      example('standalone.yaml'),
      {
        kafka: {
          bootstrapServers: ['kafka:9093'],
          sasl: { enabled: true, mechanism: 'SCRAM-SHA-512', secretName: 'scorer', usernameKey: 'user', passwordKey: 'password' },
          tls: { enabled: true, caSecret: { name: 'cluster-ca', key: 'ca.crt' }, clientCertSecret: { name: 'scorer-tls' } },
        },
        server: { kafkaEndpoint: { enabled: true }, workers: 1 },
      },
    ];
    const r = await render(...values);
    assert.equal(r.code, 0, r.stderr);
    for (const object of r.objects) assert.deepEqual(await validateObject(object), [], `${object.kind} ${object.metadata.name}`);
    const spec = podSpec(find(r.objects, 'Deployment', 'rel-inflow-server'));
    const server = spec.containers[0];
    assert.ok(server);
    const at = server.args?.indexOf('--kafka-config') ?? -1;
    assert.equal(server.args?.[at + 1], '/etc/inflow/server-kafka/kafka.yaml');
    assert.deepEqual(
      server.volumeMounts?.filter((m) => m.mountPath.startsWith('/etc/inflow')).map((m) => [m.name, m.mountPath, m.readOnly]),
      [
        ['server-kafka', '/etc/inflow/server-kafka', true],
        ['kafka-credentials', '/etc/inflow/kafka', true],
      ],
    );
    const secrets = spec.volumes.find((v) => v.name === 'kafka-credentials') as unknown as {
      projected: { sources: { secret: { name: string; items: { key: string; path: string }[] } }[] };
    };
    assert.deepEqual(
      secrets.projected.sources.map((s) => [s.secret.name, s.secret.items.map((i) => `${i.key}→${i.path}`)]),
      [
        ['scorer', ['password→sasl/password', 'user→sasl/username']],
        ['cluster-ca', ['ca.crt→tls/ca.crt']],
        ['scorer-tls', ['user.crt→tls/tls.crt', 'user.key→tls/tls.key']],
      ],
    );
    // The ConfigMap names files only; inflow's own schema accepts it and reads the secrets from them.
    const text = find(r.objects, 'ConfigMap', 'rel-inflow-server-kafka').data?.['kafka.yaml'] ?? '';
    assert.doesNotMatch(text, /s3cret/);
    const dir = mkdtempSync(join(work, 'server-kafka-'));
    for (const [file, content] of Object.entries({
      'sasl/username': 'scorer\n',
      'sasl/password': 's3cret\n',
      'tls/ca.crt': 'CA PEM\n',
      'tls/tls.crt': 'CERT PEM\n',
      'tls/tls.key': 'KEY PEM\n',
    })) {
      mkdirSync(join(dir, file, '..'), { recursive: true });
      writeFileSync(join(dir, file), content);
    }
    const config = validateConfig(kafkaConfigSchema, parse(text.replaceAll('/etc/inflow/kafka/', `${dir}/`)), 'kafka.yaml');
    const options = connectionOptions(config as KafkaConfig & { bootstrapServers: string[] }, 'test');
    assert.deepEqual(options.bootstrapBrokers, ['kafka:9093']);
    assert.deepEqual(options.sasl, { mechanism: 'SCRAM-SHA-512', username: 'scorer', password: 's3cret' });
    assert.deepEqual([options.tls?.ca, options.tls?.cert, options.tls?.key], ['CA PEM\n', 'CERT PEM\n', 'KEY PEM\n']);
  });

  describe('the prepare init container', () => {
    async function prepareScript(objects: K8sObject[]): Promise<string> {
      const script = join(work, `prepare-${Date.now()}.mjs`);
      writeFileSync(script, find(objects, 'ConfigMap', 'rel-inflow-prepare').data?.['prepare.mjs'] ?? '');
      return script;
    }

    it('adds the SASL and TLS material from the mounted Secrets to the pipeline, which inflow then accepts', async () => {
      const { objects } = await render(example('self-contained.yaml'));
      const dir = mkdtempSync(join(work, 'prepare-'));
      mkdirSync(join(dir, 'secrets/sasl'), { recursive: true });
      mkdirSync(join(dir, 'secrets/tls'), { recursive: true });
      writeFileSync(join(dir, 'secrets/sasl/username'), 'digits-scorer');
      writeFileSync(join(dir, 'secrets/sasl/password'), 's3cret\n');
      writeFileSync(join(dir, 'secrets/tls/ca.crt'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
      writeFileSync(join(dir, 'in.yaml'), find(objects, 'ConfigMap', 'rel-inflow-pipeline').data?.['pipeline.yaml'] ?? '');
      const { stdout } = await run(process.execPath, [await prepareScript(objects)], {
        env: {
          PREPARE_APP: join(repoRoot, 'package.json'),
          PREPARE_SECRETS: join(dir, 'secrets'),
          PREPARE_PIPELINE_IN: join(dir, 'in.yaml'),
          PREPARE_PIPELINE_OUT: join(dir, 'out.yaml'),
        },
      });
      assert.match(stdout, /with SASL credentials with TLS material/);
      const config = validatePipelineConfig(parse(readFileSync(join(dir, 'out.yaml'), 'utf8')), 'prepared pipeline');
      assert.deepEqual(config.kafka.sasl, { mechanism: 'SCRAM-SHA-512', username: 'digits-scorer', password: 's3cret' });
      assert.match(config.kafka.ssl?.ca ?? '', /^-----BEGIN CERTIFICATE-----/);
    });

    it('copies the model repository and writes intraOpThreads into onnx configs that set none', async () => {
      const { objects } = await render(example('sidecar.yaml'));
      const dir = mkdtempSync(join(work, 'models-'));
      const from = join(dir, 'from');
      cpSync(join(repoRoot, 'models/repository/digits-mlp'), join(from, 'digits-mlp'), { recursive: true });
      mkdirSync(join(from, 'pinned'));
      writeFileSync(join(from, 'pinned/config.yaml'), 'platform: onnx\nruntime: { file: model.onnx, intraOpThreads: 4 }\n');
      const { stdout } = await run(process.execPath, [await prepareScript(objects)], {
        env: {
          PREPARE_APP: join(repoRoot, 'package.json'),
          PREPARE_MODELS_FROM: from,
          PREPARE_MODELS_TO: join(dir, 'to'),
          PREPARE_ONNX_THREADS: '2',
        },
      });
      assert.match(stdout, /digits-mlp: runtime.intraOpThreads 2/);
      const digits = parse(readFileSync(join(dir, 'to/digits-mlp/config.yaml'), 'utf8')) as {
        runtime: Record<string, unknown>;
        batching: unknown;
      };
      assert.deepEqual(digits.runtime, { file: 'model.onnx', intraOpThreads: 2 });
      assert.ok(digits.batching, 'the rest of the config is kept');
      assert.equal(
        (parse(readFileSync(join(dir, 'to/pinned/config.yaml'), 'utf8')) as { runtime: { intraOpThreads: number } }).runtime.intraOpThreads,
        4,
      );
    });
  });

  describe('bad values fail at helm template time with a message naming the value', () => {
    const cases: { name: string; values: (string | object)[]; message: RegExp }[] = [
      {
        name: 'a typo in a key',
        values: [example('standalone.yaml'), { server: { replica: 3 } }],
        message: /server: Additional property replica is not allowed/,
      },
      {
        name: 'a wrong type',
        values: [{ server: { restPort: 'http' } }],
        message: /server\.restPort: Invalid type\. Expected: integer, given: string/,
      },
      { name: 'an unknown mode', values: [{ mode: 'embedded' }], message: /mode: mode must be one of the following/ },
      {
        name: 'sidecar mode without a server image',
        values: [example('sidecar.yaml'), { sidecar: { image: { repository: '' } } }],
        message: /sidecar\.image\.repository is required in mode sidecar/,
      },
      {
        name: 'replicas above partitions with KEDA',
        values: [example('self-contained.yaml'), { stream: { autoscaling: { maxReplicas: 24 } } }],
        message: /stream\.autoscaling\.maxReplicas \(24\) is above stream\.autoscaling\.partitions \(12\)/,
      },
      {
        name: 'KEDA without the partition count',
        values: [example('self-contained.yaml'), { kafkaTopics: { enabled: false }, stream: { autoscaling: { maxReplicas: 0 } } }],
        message: /stream\.autoscaling\.partitions is required/,
      },
      { name: 'no model source', values: [{ models: { source: null } }], message: /models: source is required/ },
      {
        name: 'a model image source without an image',
        values: [{ models: { source: 'initContainer' } }],
        message: /models\.initContainer\.image\.repository is required/,
      },
      {
        name: 'a self-contained pipeline without an embedded model',
        values: [example('sidecar.yaml'), { mode: 'self-contained', stream: { pipeline: { models: { local: null } } } }],
        message: /stream\.pipeline\.models: mode self-contained .* needs an embedded model source/,
      },
      {
        name: 'a sidecar pipeline without the remote source to point at it',
        values: [example('sidecar.yaml'), { sidecar: { modelSource: 'nope' } }],
        message: /sidecar\.modelSource: the pipeline has no remote model source "nope"/,
      },
      {
        name: 'credentials written into the pipeline',
        values: [example('sidecar.yaml'), { stream: { pipeline: { kafka: { sasl: { mechanism: 'PLAIN', password: 'x' } } } } }],
        message: /stream\.pipeline\.kafka\.sasl .* use kafka\.sasl and kafka\.tls/,
      },
      {
        name: 'SASL without its Secret',
        values: [example('self-contained.yaml'), { kafka: { sasl: { secretName: '' } } }],
        message: /kafka\.sasl\.secretName is required/,
      },
      {
        name: 'the admin API with several workers',
        values: [{ server: { workers: 2, admin: { secretName: 'admin' } } }],
        message: /server\.admin\.secretName with server\.workers 2/,
      },
      {
        name: 'models from Kafka in sidecar mode',
        values: [example('sidecar.yaml'), { models: { source: 'kafka', volume: null } }],
        message: /models\.source kafka does not work in mode sidecar/,
      },
    ];
    for (const c of cases) {
      it(`rejects ${c.name}`, async () => {
        const r = await render(...c.values);
        assert.notEqual(r.code, 0, `rendered although it should not:\n${r.objects.map((o) => o.kind).join(', ')}`);
        assert.match(r.stderr, c.message);
      });
    }
  });
});
