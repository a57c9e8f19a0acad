/**
 * Serdes for records in the Confluent wire format (./wire-format.ts) with schemas in a Schema
 * Registry: Avro, Protobuf and JSON Schema, for keys or values of one topic.
 *
 * Reading takes the schema id from the record and decodes with that schema (fetched once per
 * id). Writing uses one output schema, chosen by `write`: a schema text registered under the
 * subject (auto-register, the default) or only looked up there; the subject's latest version;
 * or a fixed schema id. The subject follows the subject name strategy, as in Confluent's
 * serdes: `topic` (`<topic>-value`), `record` (the record's full name) or `topic-record`.
 *
 * Once its schema is cached a call is synchronous; the first call for a schema returns a promise.
 */
import { InflowError } from '../../errors.ts';
import type { AsyncSerde } from '../serdes.ts';
import type { Schema, SchemaReference, SchemaRegistryClient, SchemaType } from './registry-client.ts';
import { avroCodec, avroReader, jsonSchemaCodec, protobufCodec, type ResolvedReference, type SchemaCodec } from './schema-codecs.ts';
import { frameHeader, HEADER_BYTES, readFrame } from './wire-format.ts';

/** Record formats in a registry. */
export const SchemaFormat = { AVRO: 'avro', PROTOBUF: 'protobuf', JSON_SCHEMA: 'json-schema' } as const;
export type SchemaFormat = (typeof SchemaFormat)[keyof typeof SchemaFormat];

/** Subject name strategies (Confluent's TopicNameStrategy, RecordNameStrategy, TopicRecordNameStrategy). */
export const SubjectNameStrategy = { TOPIC: 'topic', RECORD: 'record', TOPIC_RECORD: 'topic-record' } as const;
export type SubjectNameStrategy = (typeof SubjectNameStrategy)[keyof typeof SubjectNameStrategy];

const schemaTypeOf: Record<SchemaFormat, SchemaType> = { avro: 'AVRO', protobuf: 'PROTOBUF', 'json-schema': 'JSON' };

/** How a serde writes. Exactly one of `schema`, `useLatest`, `schemaId`. */
export interface WriteSchema {
  /** The output schema's text (Avro JSON, .proto source, JSON Schema). */
  readonly schema?: string;
  readonly references?: readonly SchemaReference[];
  /** Register `schema` under the subject (default true); false only looks it up (NOT_FOUND when absent). */
  readonly autoRegister?: boolean;
  /** Write with the subject's latest version. */
  readonly useLatest?: boolean;
  /** Write with this schema id. */
  readonly schemaId?: number;
  /** Protobuf: the message to write (full name); default the file's first message. With `useLatest` and a record strategy: the record name. */
  readonly recordName?: string;
}

/** Options of {@link createRegistrySerde}. */
export interface RegistrySerdeOptions {
  readonly client: SchemaRegistryClient;
  readonly format: SchemaFormat;
  readonly topic: string;
  /** A key serde (subject `<topic>-key`); default a value serde. */
  readonly isKey?: boolean;
  readonly subjectNameStrategy?: SubjectNameStrategy;
  /** Needed to serialize; a read-only serde may leave it out. */
  readonly write?: WriteSchema;
  /**
   * Avro only: the schema records are read with (schema evolution): a record written with an
   * older or newer compatible schema is resolved into this one (defaults for fields its writer
   * lacked, fields the reader lacks dropped). Default: each record's own writer schema.
   */
  readonly readerSchema?: string;
  /**
   * How long a refused output schema (the registry answered 409 incompatible, 422 invalid, 403
   * forbidden, …: not retriable) stays refused before the registry is asked again, in
   * milliseconds; default {@link DEFAULT_REFUSAL_TTL_MS}. Meanwhile every record fails at once
   * with the registry's reason (a dead letter) instead of one registry call per record.
   */
  readonly refusalTtlMs?: number;
  /** Clock of the refusal cache (tests); default Date.now. */
  readonly now?: () => number;
}

/** Default time a refused output schema is not asked for again: 60 s. */
export const DEFAULT_REFUSAL_TTL_MS = 60_000;

/** The subject of a topic's keys or values under a strategy (Confluent's naming). */
export function subjectName(strategy: SubjectNameStrategy, topic: string, isKey: boolean, recordName: string | undefined): string {
  if (strategy === SubjectNameStrategy.TOPIC) return `${topic}-${isKey ? 'key' : 'value'}`;
  if (recordName === undefined) {
    throw new InflowError(
      'INVALID_CONFIG',
      `the ${strategy} subject name strategy needs a record name; the schema has none (Avro name, Protobuf message, JSON Schema title)`,
    );
  }
  return strategy === SubjectNameStrategy.RECORD ? recordName : `${topic}-${recordName}`;
}

interface Writer {
  readonly id: number;
  readonly codec: SchemaCodec;
  readonly header: Buffer;
  readonly subject: string | undefined;
}

/** A serde of one topic's keys or values in the Confluent wire format. */
export function createRegistrySerde(options: RegistrySerdeOptions): AsyncSerde<unknown> {
  const { client, format, topic } = options;
  const isKey = options.isKey ?? false;
  const strategy = options.subjectNameStrategy ?? SubjectNameStrategy.TOPIC;
  const schemaType = schemaTypeOf[format];
  const write = options.write;
  const recordName = write?.recordName;
  const what = `${topic} ${isKey ? 'key' : 'value'}`;

  if (options.readerSchema !== undefined && format !== SchemaFormat.AVRO) {
    throw new InflowError('INVALID_CONFIG', `${what}: a reader schema is for Avro; ${format} records are read with their writer's schema`);
  }
  const reader = options.readerSchema === undefined ? undefined : avroReader(options.readerSchema);
  const codecs = new Map<number, SchemaCodec>();
  const pending = new Map<number, Promise<SchemaCodec>>();

  async function resolveReferences(refs: readonly SchemaReference[], seen = new Set<string>()): Promise<ResolvedReference[]> {
    const out: ResolvedReference[] = [];
    for (const ref of refs) {
      const key = `${ref.subject}\0${ref.version}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const v = await client.version(ref.subject, ref.version);
      // Dependencies first: a referenced schema may itself reference others.
      out.push(...(await resolveReferences(v.references, seen)), { name: ref.name, schema: v });
    }
    return out;
  }

  async function buildCodec(schema: Schema): Promise<SchemaCodec> {
    if (schema.schemaType !== schemaType) {
      throw new InflowError('SERIALIZATION', `schema is ${schema.schemaType}; this serde reads ${schemaType} (${format})`, {
        details: { reason: 'wrong-schema-type' },
      });
    }
    const refs = await resolveReferences(schema.references);
    if (format === SchemaFormat.AVRO) return avroCodec(schema, refs, reader);
    if (format === SchemaFormat.PROTOBUF) return protobufCodec(schema, refs, recordName);
    return jsonSchemaCodec(schema, refs);
  }

  /** The codec of a schema id, fetched once; concurrent callers share the fetch. */
  function codecFor(id: number): Promise<SchemaCodec> {
    let p = pending.get(id);
    if (!p) {
      p = (async () => {
        let schema: Schema;
        try {
          schema = await client.schemaById(id);
        } catch (error) {
          const e = InflowError.from(error);
          // Unknown id is the record's fault; an unreachable registry is not (it stays retriable).
          if (e.code !== 'NOT_FOUND') throw e;
          throw new InflowError('SERIALIZATION', `${what}: schema id ${id} is not in the schema registry (${client.url})`, {
            cause: e,
            details: { schemaId: id, reason: 'unknown-schema-id' },
          });
        }
        let codec: SchemaCodec;
        try {
          codec = await buildCodec(schema);
        } catch (error) {
          const e = InflowError.from(error);
          if (e.retriable) throw e;
          throw new InflowError('SERIALIZATION', `${what}: schema id ${id}: ${e.message}`, { cause: e, details: { schemaId: id } });
        }
        codecs.set(id, codec);
        return codec;
      })();
      pending.set(id, p);
      p.catch(() => pending.delete(id));
    }
    return p;
  }

  function decodeWith(codec: SchemaCodec, id: number, data: Buffer): unknown {
    try {
      return codec.decode(data, HEADER_BYTES);
    } catch (error) {
      const e = InflowError.from(error);
      throw new InflowError(e.code, `${what} (schema id ${id}): ${e.message}`, { cause: e, details: { schemaId: id, ...e.details } });
    }
  }

  let writer: Writer | undefined;
  let writerPending: Promise<Writer> | undefined;
  const refusalTtlMs = options.refusalTtlMs ?? DEFAULT_REFUSAL_TTL_MS;
  const now = options.now ?? Date.now;
  /** The registry's last refusal of the output schema and when it may be asked again (ms, `now()`'s clock). */
  let refused: { readonly error: InflowError; readonly until: number } | undefined;

  /** Each record gets its own error (a dead letter of its own) carrying the cached reason. */
  function refusal(r: { readonly error: InflowError; readonly until: number }): InflowError {
    const seconds = Math.max(0, Math.ceil((r.until - now()) / 1000));
    return new InflowError(r.error.code, `${r.error.message} (refusal cached: the registry is asked again in ${seconds} s)`, {
      cause: r.error,
      details: { ...r.error.details, refusalCached: true },
    });
  }

  async function makeWriter(): Promise<Writer> {
    if (!write)
      throw new InflowError('INVALID_CONFIG', `${what}: no output schema; give a schema, useLatest or a schemaId to write ${format}`);
    if (write.schemaId !== undefined) {
      const codec = await codecFor(write.schemaId).catch((error: unknown) => {
        const e = InflowError.from(error);
        throw e.retriable
          ? e
          : new InflowError('INVALID_CONFIG', `${what}: output schema id ${write.schemaId}: ${e.message}`, { cause: e });
      });
      return { id: write.schemaId, codec, header: frameHeader(write.schemaId), subject: undefined };
    }
    if (write.useLatest) {
      const subject = subjectName(strategy, topic, isKey, recordName);
      const latest = await client.latest(subject);
      const codec = await codecFor(latest.id);
      return { id: latest.id, codec, header: frameHeader(latest.id), subject };
    }
    if (write.schema === undefined) {
      throw new InflowError('INVALID_CONFIG', `${what}: no output schema; give a schema, useLatest or a schemaId to write ${format}`);
    }
    const schema: Schema = { schemaType, schema: write.schema, references: write.references ?? [] };
    let codec: SchemaCodec;
    try {
      codec = await buildCodec(schema);
    } catch (error) {
      const e = InflowError.from(error);
      throw e.retriable
        ? e
        : new InflowError('INVALID_CONFIG', `${what}: the output schema is not valid ${format}: ${e.message}`, { cause: e });
    }
    const subject = subjectName(strategy, topic, isKey, codec.recordName);
    let id: number;
    try {
      id = write.autoRegister === false ? (await client.lookup(subject, schema)).id : await client.register(subject, schema);
    } catch (error) {
      const e = InflowError.from(error);
      if (e.retriable) throw e;
      const how = write.autoRegister === false ? 'is not registered under' : 'was refused by the registry for';
      throw new InflowError(e.code, `${what}: the output schema ${how} subject "${subject}": ${e.message}`, {
        cause: e,
        details: { subject, ...e.details },
      });
    }
    codecs.set(id, codec);
    return { id, codec, header: frameHeader(id), subject };
  }

  function encodeWith(w: Writer, value: unknown): Buffer {
    let payload: Buffer;
    try {
      payload = w.codec.encode(value);
    } catch (error) {
      const e = InflowError.from(error);
      const where = w.subject ? `subject "${w.subject}", ` : '';
      throw new InflowError(e.code, `${what} (${where}schema id ${w.id}): ${e.message}`, {
        cause: e,
        details: { schemaId: w.id, subject: w.subject, ...e.details },
      });
    }
    return Buffer.concat([w.header, payload], w.header.length + payload.length);
  }

  return {
    name: format,
    serialize(value) {
      if (value === null) return null;
      if (writer) return encodeWith(writer, value);
      if (refused) {
        if (now() < refused.until) throw refusal(refused);
        refused = undefined;
      }
      writerPending ??= makeWriter().then(
        (w) => (writer = w),
        (error: unknown) => {
          writerPending = undefined;
          const e = InflowError.from(error);
          // An outage is retried by the caller (not the record's fault); a refusal would be refused again.
          if (!e.retriable && refusalTtlMs > 0) refused = { error: e, until: now() + refusalTtlMs };
          throw error;
        },
      );
      return writerPending.then((w) => encodeWith(w, value));
    },
    deserialize(data) {
      if (data === null) return null;
      let schemaId: number;
      try {
        schemaId = readFrame(data).schemaId;
      } catch (error) {
        const e = InflowError.from(error);
        throw new InflowError(e.code, `${what}: ${e.message}`, { cause: e, details: e.details });
      }
      const codec = codecs.get(schemaId);
      if (codec) return decodeWith(codec, schemaId, data);
      return codecFor(schemaId).then((c) => decodeWith(c, schemaId, data));
    },
  };
}
