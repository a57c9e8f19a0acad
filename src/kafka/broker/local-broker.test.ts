import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cacheRoot, ensureKafkaJars, KAFKA_VERSION } from './broker-jars.ts';
import { findJava, javaExecutable, parseJavaMajor } from './java.ts';
import { freePort, randomClusterId, serverProperties } from './local-broker.ts';

describe('local broker launcher', () => {
  it('reads the Java major version from java -version, old and new styles', () => {
    assert.equal(parseJavaMajor('openjdk version "17.0.15" 2025-04-15'), 17);
    assert.equal(parseJavaMajor('java version "1.8.0_392"'), 8);
    assert.equal(parseJavaMajor('openjdk version "21" 2023-09-19'), 21);
    assert.equal(parseJavaMajor('garbage'), undefined);
  });

  it('uses $JAVA_HOME/bin/java when JAVA_HOME is set', () => {
    assert.equal(javaExecutable({ JAVA_HOME: '/opt/jdk' }), '/opt/jdk/bin/java');
    assert.equal(javaExecutable({}), 'java');
  });

  it('says Java 17+ is needed, or KAFKA_BOOTSTRAP_SERVERS, when java is missing', async () => {
    await assert.rejects(findJava({ JAVA_HOME: '/nonexistent-jdk', PATH: process.env.PATH }), {
      code: 'JAVA_MISSING',
      message: /Java 17\+ is needed to run a local Kafka broker.*KAFKA_BOOTSTRAP_SERVERS/,
    });
  });

  it('refuses a Java that is too old and names the version found', async () => {
    const home = await mkdtemp(join(tmpdir(), 'inflow-fake-jdk-'));
    await mkdir(join(home, 'bin'));
    const java = join(home, 'bin', 'java');
    await writeFile(java, '#!/bin/sh\necho \'java version "1.8.0_392"\' >&2\n');
    await chmod(java, 0o755);
    await assert.rejects(findJava({ JAVA_HOME: home }), { code: 'JAVA_MISSING', message: /found Java 8/ });
  });

  it('writes a single-node KRaft config on loopback with exactly-once settings and no topic auto-creation', () => {
    const props = serverProperties(19092, 19093, '/tmp/data');
    assert.match(props, /^process\.roles=broker,controller$/m);
    assert.match(props, /^listeners=PLAINTEXT:\/\/127\.0\.0\.1:19092,CONTROLLER:\/\/127\.0\.0\.1:19093$/m);
    assert.match(props, /^transaction\.state\.log\.replication\.factor=1$/m);
    assert.match(props, /^transaction\.state\.log\.min\.isr=1$/m);
    assert.match(props, /^auto\.create\.topics\.enable=false$/m);
    assert.match(serverProperties(1, 2, '/d', { 'auto.create.topics.enable': 'true' }), /^auto\.create\.topics\.enable=true$/m);
  });

  it('draws cluster ids of 22 base64url characters that never start with "-" (the storage tool would read an option)', () => {
    for (let i = 0; i < 2000; i++) {
      const id = randomClusterId();
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
    }
  });

  it('finds free loopback ports', async () => {
    const port = await freePort();
    assert.ok(port > 0 && port < 65536);
  });

  it('caches jars under INFLOW_CACHE_DIR, else XDG_CACHE_HOME/inflow', () => {
    assert.equal(cacheRoot({ INFLOW_CACHE_DIR: '/c' }), '/c');
    assert.equal(cacheRoot({ XDG_CACHE_HOME: '/x' }), '/x/inflow');
  });
});

describe('fetching the broker jars', () => {
  it('says Maven is needed (or KAFKA_BOOTSTRAP_SERVERS) when mvn is missing', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'inflow-cache-'));
    await assert.rejects(ensureKafkaJars({ cacheDir, mvn: '/nonexistent/mvn' }), {
      code: 'DOWNLOAD_FAILED',
      message: /Maven \(mvn\) is needed.*KAFKA_BOOTSTRAP_SERVERS/,
    });
  });

  it('reports a failing Maven run with its last lines, and leaves nothing marked complete', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inflow-fake-mvn-'));
    const mvn = join(dir, 'mvn');
    await writeFile(mvn, '#!/bin/sh\necho "[ERROR] Could not transfer artifact org.apache.kafka:kafka_2.13" >&2\nexit 1\n');
    await chmod(mvn, 0o755);
    await assert.rejects(ensureKafkaJars({ cacheDir: dir, mvn }), {
      code: 'DOWNLOAD_FAILED',
      message: /Maven Central failed[\s\S]*Could not transfer artifact/,
    });
    assert.equal(existsSync(join(dir, `kafka-${KAFKA_VERSION}`, 'lib', '.complete')), false);
  });
});
