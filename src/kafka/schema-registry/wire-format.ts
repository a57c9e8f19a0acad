/**
 * The Confluent wire format (Confluent Schema Registry docs, "Wire format"):
 *
 *   0    u8       magic byte 0
 *   1    u32 BE   schema id in the registry
 *   5    …        Protobuf only: the message indexes (below)
 *   …    …        the payload: Avro binary, Protobuf binary, or JSON text
 *
 * Protobuf message indexes name the message type inside the schema's file: the path of
 * indexes from a top-level message through nested ones, written as a zigzag varint count then
 * zigzag varint indexes; the common path [0] (the file's first message) is the single byte 0.
 */
import { InflowError } from '../../errors.ts';

/** The first byte of every framed record. */
export const MAGIC_BYTE = 0;

/** Bytes before the payload of an Avro or JSON Schema record. */
export const HEADER_BYTES = 5;

/** Where a framed record's schema id and payload are. */
export interface Framed {
  readonly schemaId: number;
  /** Offset of what follows the 5-byte header (the message indexes for Protobuf, else the payload). */
  readonly offset: number;
}

/** Reads the magic byte and schema id; SERIALIZATION when the record is not framed. */
export function readFrame(data: Buffer): Framed {
  if (data.length < HEADER_BYTES || data[0] !== MAGIC_BYTE) {
    const head = data.subarray(0, 8).toString('hex');
    throw new InflowError(
      'SERIALIZATION',
      `record is not in the Confluent wire format: expected magic byte 0 and a 4-byte schema id, got ${data.length} bytes starting ${head ? `0x${head}` : '(empty)'}`,
      { details: { reason: 'no-magic-byte' } },
    );
  }
  return { schemaId: data.readUInt32BE(1), offset: HEADER_BYTES };
}

/** The 5-byte header (and Protobuf message indexes, when given) for `schemaId`. */
export function frameHeader(schemaId: number, messageIndexes?: readonly number[]): Buffer {
  const indexes = messageIndexes === undefined ? undefined : encodeMessageIndexes(messageIndexes);
  const out = Buffer.allocUnsafe(HEADER_BYTES + (indexes?.length ?? 0));
  out[0] = MAGIC_BYTE;
  out.writeUInt32BE(schemaId, 1);
  indexes?.copy(out, HEADER_BYTES);
  return out;
}

function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

function writeVarint(bytes: number[], value: number): void {
  let v = value;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
}

/** Message indexes as written after the header; [0] is the single byte 0 (Confluent's shorthand). */
export function encodeMessageIndexes(indexes: readonly number[]): Buffer {
  if (indexes.length === 1 && indexes[0] === 0) return Buffer.of(0);
  const bytes: number[] = [];
  writeVarint(bytes, zigzag(indexes.length));
  for (const i of indexes) writeVarint(bytes, zigzag(i));
  return Buffer.from(bytes);
}

/** Reads message indexes at `offset`; returns them and where the payload starts. */
export function decodeMessageIndexes(data: Buffer, offset: number): { indexes: number[]; offset: number } {
  let pos = offset;
  const read = (): number => {
    let result = 0;
    let scale = 1;
    for (let shift = 0; shift < 35; shift += 7) {
      if (pos >= data.length) break;
      const b = data[pos++] as number;
      result += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return result % 2 === 0 ? result / 2 : -(result + 1) / 2;
    }
    throw new InflowError('SERIALIZATION', `Protobuf message indexes at byte ${offset} are truncated or not varints`, {
      details: { reason: 'bad-message-indexes' },
    });
  };
  const count = read();
  if (count === 0) return { indexes: [0], offset: pos };
  // A message path deeper than 100 is no real schema: the bytes are not message indexes.
  if (count < 0 || count > 100) {
    throw new InflowError(
      'SERIALIZATION',
      `Protobuf message index count ${count} is not valid; expected 0..100 (is this a Protobuf record?)`,
      {
        details: { reason: 'bad-message-indexes' },
      },
    );
  }
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) {
    const index = read();
    if (index < 0) {
      throw new InflowError('SERIALIZATION', `Protobuf message index ${index} is negative`, { details: { reason: 'bad-message-indexes' } });
    }
    indexes.push(index);
  }
  return { indexes, offset: pos };
}
