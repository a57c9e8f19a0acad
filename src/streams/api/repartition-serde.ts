/**
 * The serde of repartition topics: keys and values of any shape a topology carries survive the
 * round trip through Kafka. One tag byte, then the payload: 0 null (no bytes at all for a null
 * value or key, as Kafka would store it), 1 raw bytes (a Buffer), 2 JSON. Equal keys encode to
 * equal bytes, so the producer's partitioner sends every record of a key to one partition.
 */
import { InflowError } from '../../errors.ts';
import type { Serde } from '../../kafka/serdes.ts';

const Tag = { BYTES: 1, JSON: 2 } as const;

export const repartitionSerde: Serde<unknown> = Object.freeze({
  name: 'repartition',
  serialize(value: unknown): Buffer | null {
    if (value === null || value === undefined) return null;
    if (Buffer.isBuffer(value)) return Buffer.concat([Buffer.from([Tag.BYTES]), value]);
    let text: string | undefined;
    try {
      text = JSON.stringify(value);
    } catch (e) {
      throw new InflowError(
        'SERIALIZATION',
        `a record going through a repartition topic does not serialize to JSON: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
    if (text === undefined) throw new InflowError('SERIALIZATION', `a ${typeof value} cannot go through a repartition topic`);
    return Buffer.concat([Buffer.from([Tag.JSON]), Buffer.from(text)]);
  },
  deserialize(bytes: Buffer | null): unknown {
    if (bytes === null || bytes.length === 0) return null;
    const body = bytes.subarray(1);
    if (bytes[0] === Tag.BYTES) return Buffer.from(body);
    if (bytes[0] === Tag.JSON) return JSON.parse(body.toString('utf8'));
    throw new InflowError(
      'SERIALIZATION',
      `repartition record has an unknown tag byte ${bytes[0]}; was the topic written by another program?`,
    );
  },
});
