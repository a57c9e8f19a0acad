/**
 * Payload codecs for one registered schema: Avro (avsc), Protobuf (protobufjs) and JSON Schema
 * (ajv validating JSON text). A codec is built once per schema id and cached by the serde.
 * Referenced schemas come in already fetched, by their reference names.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import avro from 'avsc';
import protobuf from 'protobufjs';
// CommonJS without detectable named exports: the default import is the module object.
import descriptorModule from 'protobufjs/ext/descriptor.js';
import type * as Descriptor from 'protobufjs/ext/descriptor.js';
import { InflowError } from '../../errors.ts';
import { typedArrayHook, withPlainArrays } from './avro-typed-arrays.ts';
import type { Schema } from './registry-client.ts';
import { decodeMessageIndexes, encodeMessageIndexes } from './wire-format.ts';

/** A schema's payload codec. */
export interface SchemaCodec {
  /** The name the record subject strategies use: Avro full name, Protobuf message full name, JSON Schema title. */
  readonly recordName: string | undefined;
  /** Encodes `value`; the bytes start with the Protobuf message indexes for Protobuf. */
  encode(value: unknown): Buffer;
  /** Decodes the payload (Protobuf: message indexes first) at `offset`. */
  decode(data: Buffer, offset: number): unknown;
}

/** A referenced schema, by the name the referring schema uses for it. */
export interface ResolvedReference {
  readonly name: string;
  readonly schema: Schema;
}

function mismatch(what: string, details: Record<string, unknown> = {}): InflowError {
  return new InflowError('SERIALIZATION', what, { details: { reason: 'schema-mismatch', ...details } });
}

/** An Avro type with typed-array float/double arrays (./avro-typed-arrays.ts), after the named types of `references`. */
function avroType(text: string, references: readonly ResolvedReference[]): avro.Type {
  const registry: Record<string, avro.Type> = {};
  // Arrays of float/double decode into typed arrays: no JS number per item.
  const options = { registry, typeHook: typedArrayHook };
  for (const ref of references) avro.Type.forSchema(JSON.parse(ref.schema.schema) as avro.Schema, options);
  return avro.Type.forSchema(JSON.parse(text) as avro.Schema, options);
}

/**
 * An Avro reader schema: records are decoded into this shape whatever compatible schema wrote
 * them (Avro schema resolution: fields the reader lacks are skipped, fields the writer lacks
 * take the reader's default, numbers promote).
 */
export function avroReader(text: string, references: readonly ResolvedReference[] = []): avro.Type {
  try {
    return avroType(text, references);
  } catch (error) {
    throw new InflowError('INVALID_CONFIG', `the Avro reader schema is not valid: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Avro: named types of references are registered first, so the main schema can use them. With
 * a `reader` type, decoding resolves this (writer) schema into the reader's shape.
 */
export function avroCodec(schema: Schema, references: readonly ResolvedReference[], reader?: avro.Type): SchemaCodec {
  const type = avroType(schema.schema, references);
  const name = type.name;
  let resolver: avro.Resolver | undefined;
  if (reader) {
    try {
      resolver = reader.createResolver(type);
    } catch (error) {
      throw mismatch(
        `written with Avro schema ${name ?? type.typeName}, which the reader schema ${reader.name ?? reader.typeName} cannot read: ${(error as Error).message}`,
        { reason: 'incompatible-writer-schema' },
      );
    }
  }
  const decoder = reader ?? type;
  return {
    recordName: name,
    encode(value) {
      try {
        return type.toBuffer(value);
      } catch (error) {
        const paths: string[] = [];
        type.isValid(value, { errorHook: (path, v) => paths.push(`${path.join('.') || '(value)'} = ${preview(v)}`) });
        throw mismatch(`value does not fit Avro schema ${name ?? type.typeName}: ${paths.join('; ') || (error as Error).message}`, {
          paths,
        });
      }
    },
    decode(data, offset) {
      let result: { value: unknown; offset: number };
      try {
        result = resolver ? decoder.decode(data, offset, resolver) : type.decode(data, offset);
      } catch (error) {
        throw mismatch(`Avro payload does not decode with schema ${name ?? type.typeName}: ${(error as Error).message}`);
      }
      // avsc reports a short buffer as offset -1 and ignores trailing bytes: both mean another schema wrote it.
      if (result.offset !== data.length) {
        throw mismatch(
          result.offset < 0
            ? `Avro payload of ${data.length - offset} bytes is truncated for schema ${name ?? type.typeName}`
            : `Avro payload has ${data.length - result.offset} bytes left over after schema ${name ?? type.typeName}`,
        );
      }
      return result.value;
    },
  };
}

function preview(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

const descriptor = descriptorModule as unknown as typeof Descriptor;

/** Whether a Protobuf schema is a base64 FileDescriptorProto rather than .proto source. */
function isDescriptor(text: string): boolean {
  return /^[A-Za-z0-9+/=\s]+$/.test(text) && !/\b(syntax|message|package)\b/.test(text);
}

/** Top-level and nested message names of one .proto file, each with its message index path. */
function messagePaths(ns: protobuf.NamespaceBase, prefix: number[] = []): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let i = 0;
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) {
      const path = [...prefix, i++];
      out.set(nested.fullName.replace(/^\./, ''), path);
      for (const [n, p] of messagePaths(nested, path)) out.set(n, p);
    } else if (nested instanceof protobuf.Namespace && !(nested instanceof protobuf.Type)) {
      for (const [n, p] of messagePaths(nested, prefix)) out.set(n, p);
    }
  }
  return out;
}

/**
 * Protobuf: the writing message is `messageName` (full name) or the file's first message.
 * Decoding follows the record's message indexes. Values are plain objects (enums as names,
 * 64-bit integers as numbers, defaults filled in), like JSON of the message.
 */
export function protobufCodec(schema: Schema, references: readonly ResolvedReference[], messageName?: string): SchemaCodec {
  const options = { keepCase: true };
  let root: protobuf.Root;
  let own: protobuf.Root;
  try {
    if (isDescriptor(schema.schema)) {
      // Confluent's Python and Go serializers register a base64 FileDescriptorProto, not .proto text.
      const file = (text: string) => descriptor.FileDescriptorProto.decode(Buffer.from(text, 'base64')) as Descriptor.IFileDescriptorProto;
      const files = [...references.filter((r) => isDescriptor(r.schema.schema)).map((r) => file(r.schema.schema)), file(schema.schema)];
      root = protobuf.Root.fromDescriptor({ file: files }, options);
      own = protobuf.Root.fromDescriptor({ file: [file(schema.schema)] }, options);
    } else {
      root = new protobuf.Root();
      for (const ref of references) protobuf.parse(ref.schema.schema, root, options);
      // The main file alone, to know its own messages in declaration order (the indexes' meaning).
      own = protobuf.parse(schema.schema, new protobuf.Root(), options).root;
      protobuf.parse(schema.schema, root, options);
    }
    root.resolveAll();
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `Protobuf schema does not parse or resolve: ${(error as Error).message}`, { cause: error });
  }
  const paths = messagePaths(own);
  const byPath = new Map<string, protobuf.Type>();
  for (const [name, path] of paths) byPath.set(path.join('.'), root.lookupType(name));
  const first = [...paths.keys()][0];
  const writeName = messageName ?? first;
  const writePath = writeName === undefined ? undefined : paths.get(writeName);
  const writer = writePath && root.lookupType(writeName as string);
  const indexBytes = writePath && encodeMessageIndexes(writePath);
  const toObject = { longs: Number, enums: String, defaults: true, arrays: true } as const;
  return {
    recordName: writeName,
    encode(input) {
      const value = withPlainArrays(input);
      if (!writer || !indexBytes) {
        throw new InflowError(
          'INVALID_CONFIG',
          `Protobuf schema has no message ${writeName ?? '(none declared)'} to write; it has ${[...paths.keys()].join(', ') || 'no messages'}`,
        );
      }
      const problem = writer.verify(value as Record<string, unknown>);
      if (problem) throw mismatch(`value does not fit Protobuf message ${writeName}: ${problem}`);
      const payload = writer.encode(writer.fromObject(value as Record<string, unknown>)).finish();
      return Buffer.concat([indexBytes, payload]);
    },
    decode(data, offset) {
      const { indexes, offset: start } = decodeMessageIndexes(data, offset);
      const type = byPath.get(indexes.join('.'));
      if (!type) throw mismatch(`Protobuf message indexes [${indexes.join(', ')}] name no message of the schema`);
      try {
        return type.toObject(type.decode(data.subarray(start)), toObject);
      } catch (error) {
        throw mismatch(`Protobuf payload does not decode as ${type.fullName.replace(/^\./, '')}: ${(error as Error).message}`);
      }
    },
  };
}

/** JSON Schema: JSON text validated against the schema (draft-07 by default; 2019-09 and 2020-12 by `$schema`). */
export function jsonSchemaCodec(schema: Schema, references: readonly ResolvedReference[]): SchemaCodec {
  const parsed = JSON.parse(schema.schema) as { $schema?: string; title?: string };
  const draft = parsed.$schema ?? '';
  const AjvClass = draft.includes('2020-12') ? Ajv2020 : draft.includes('2019-09') ? Ajv2019 : Ajv;
  // strict off: schemas from other teams' tools carry keywords ajv does not know (e.g. javaType).
  const ajv = new AjvClass({ strict: false, allErrors: false });
  for (const ref of references) ajv.addSchema(JSON.parse(ref.schema.schema) as object, ref.name);
  let validate: ValidateFunction;
  try {
    validate = ajv.compile(parsed);
  } catch (error) {
    throw new InflowError('INVALID_ARGUMENT', `JSON Schema does not compile: ${(error as Error).message}`, { cause: error });
  }
  const name = parsed.title;
  const check = (value: unknown): void => {
    if (!validate(value)) {
      const e = validate.errors?.[0];
      throw mismatch(
        `value does not fit JSON Schema${name ? ` ${name}` : ''}: ${e ? `${e.instancePath || '(value)'} ${e.message}` : 'invalid'}`,
      );
    }
  };
  return {
    recordName: name,
    encode(input) {
      const value = withPlainArrays(input);
      check(value);
      return Buffer.from(JSON.stringify(value), 'utf8');
    },
    decode(data, offset) {
      let value: unknown;
      try {
        value = JSON.parse(data.toString('utf8', offset));
      } catch (error) {
        throw mismatch(`JSON Schema record is not valid JSON: ${(error as Error).message}`);
      }
      check(value);
      return value;
    },
  };
}
