import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { createTensor, stringTensor, tensorStrings, type Tensor } from '../tensor.ts';
import { decodeOipBinaryRequest, decodeOipBinaryResponse, encodeOipBinaryRequest, encodeOipBinaryResponse } from './oip-binary.ts';
import { decodeRawTensor } from './raw-tensor.ts';
import { assertTensorEqual, tensorArbitrary } from './tensor-arbitrary.test.ts';

const fixture = JSON.parse(readFileSync(new URL('fixtures/oip-binary-request.json', import.meta.url), 'utf8')) as {
  header: string;
  binaryHex: string;
  bytesHex: string;
};

/** A body whose first byte sits at `lead` bytes into its ArrayBuffer (to control alignment). */
function body(parts: readonly Uint8Array[], lead = 0): Uint8Array {
  const size = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(new ArrayBuffer(lead + size), lead, size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.byteLength;
  }
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

describe('OIP binary tensor data extension', () => {
  it('decodes the reference body: binary inputs in JSON order, BYTES length-prefixed', () => {
    const header = text(fixture.header);
    const request = decodeOipBinaryRequest(body([header, hex(fixture.binaryHex), hex(fixture.bytesHex)]), String(header.byteLength));
    assertTensorEqual(request.inputs.INPUT0, createTensor('INT32', [1, 2], Int32Array.of(1, 2)));
    assert.deepEqual(tensorStrings(request.inputs.S!), ['hi', '']);
    assert.deepEqual(request.outputs, [{ name: 'OUTPUT0', parameters: { binary_data: true } }]);
  });

  it('views aligned data in place and copies misaligned data', () => {
    const header = text('{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}');
    const data = new Uint8Array(Float32Array.of(1.5, -2).buffer);
    // The data starts right after the header: pick leads that put it on and off a 4-byte boundary.
    const lead = (4 - (header.byteLength % 4)) % 4;
    const aligned = body([header, data], lead);
    const x = decodeOipBinaryRequest(aligned, header.byteLength).inputs.x!;
    assert.equal((x.data as Float32Array).buffer, aligned.buffer);
    const misaligned = body([header, data], lead + 1);
    const y = decodeOipBinaryRequest(misaligned, header.byteLength).inputs.x!;
    assert.notEqual((y.data as Float32Array).buffer, misaligned.buffer);
    assert.deepEqual([...(x.data as Float32Array)], [1.5, -2]);
    assert.deepEqual([...(y.data as Float32Array)], [1.5, -2]);
  });

  it('reads a body without the header as plain JSON', () => {
    const request = decodeOipBinaryRequest(text('{"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[true]}]}'), undefined);
    assertTensorEqual(request.inputs.x, createTensor('BOOL', [1], Uint8Array.of(1)));
  });

  it('treats Inference-Header-Content-Length 0 as a raw request for the single input, answered in binary', () => {
    const raw = new Uint8Array(Int16Array.of(7, -8, 9).buffer);
    const request = decodeOipBinaryRequest(raw, '0', { name: 'in', dtype: 'INT16', shape: [-1, 3] });
    assertTensorEqual(request.inputs.in, createTensor('INT16', [1, 3], Int16Array.of(7, -8, 9)));
    assert.deepEqual(request.parameters, { binary_data_output: true });
    assert.throws(() => decodeOipBinaryRequest(raw, '0'), { code: 'INVALID_ARGUMENT', message: /exactly one input/ });
    assert.throws(() => decodeOipBinaryRequest(raw, 0, { name: 'in', dtype: 'INT16', shape: [-1, -1] }), { message: /unknown dims/ });
  });

  it('encodes requested outputs as chunks after the JSON header and decodes them back', () => {
    const a = createTensor('FP64', [2], Float64Array.of(0.25, -1));
    const s = stringTensor([2], ['ab', 'c']);
    const j = createTensor('INT8', [1], Int8Array.of(-3));
    const encoded = encodeOipBinaryResponse(
      { modelName: 'm', outputs: { a, s, j } },
      { parameters: { binary_data_output: true }, outputs: [{ name: 'j', parameters: { binary_data: false } }] },
    );
    const json = new TextDecoder().decode(encoded.chunks[0]);
    assert.equal(
      json,
      '{"model_name":"m","outputs":[{"name":"a","datatype":"FP64","shape":[2],"parameters":{"binary_data_size":16}},' +
        '{"name":"s","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":11}},' +
        '{"name":"j","datatype":"INT8","shape":[1],"data":[-3]}]}',
    );
    assert.equal(encoded.headerLength, encoded.chunks[0]!.byteLength);
    assert.equal((encoded.chunks[1] as Uint8Array).buffer, (a.data as Float64Array).buffer, 'numeric chunks are views, not copies');
    assert.deepEqual([...encoded.chunks[2]!], [2, 0, 0, 0, 97, 98, 1, 0, 0, 0, 99]);
    assert.equal(encoded.byteLength, encoded.headerLength + 16 + 11);
    const decoded = decodeOipBinaryResponse(body(encoded.chunks), encoded.headerLength);
    assertTensorEqual(decoded.outputs.a, a);
    assertTensorEqual(decoded.outputs.s, s);
    assertTensorEqual(decoded.outputs.j, j);
    const plain = encodeOipBinaryResponse({ modelName: 'm', outputs: { j } }, () => false);
    assert.equal(plain.headerLength, undefined);
    assert.equal(plain.chunks.length, 1);
  });

  it('rejects binary parts that do not match the header', () => {
    const header = (size: number, shape = '[2]', datatype = 'INT32') =>
      text(`{"inputs":[{"name":"x","shape":${shape},"datatype":"${datatype}","parameters":{"binary_data_size":${size}}}]}`);
    const cases: [Uint8Array, string | number, RegExp][] = [
      [body([header(8), new Uint8Array(4)]), header(8).byteLength, /'binary_data_size' is 8 but only 4 bytes of binary data remain/],
      [body([header(4), new Uint8Array(4)]), header(4).byteLength, /needs 8 bytes of raw data, got 4/],
      [body([header(8), new Uint8Array(12)]), header(8).byteLength, /used 8 bytes of binary data but the body has 12/],
      [body([header(6, '[1]', 'BYTES'), hex('0500000068')]), header(6, '[1]', 'BYTES').byteLength, /only 5 bytes|claims 5 bytes/],
      [body([header(8, '[1]', 'BYTES'), hex('0000000000000000')]), header(8, '[1]', 'BYTES').byteLength, /holds 1 elements in 4 bytes/],
      [body([header(8)]), 'abc', /Inference-Header-Content-Length is "abc"/],
      [body([header(8)]), 10_000, /Inference-Header-Content-Length is 10000/],
      [body([text('{"inputs":'), new Uint8Array(2)]), 10, /JSON Parse error/],
    ];
    for (const [bytes, length, message] of cases) {
      assert.throws(() => decodeOipBinaryRequest(bytes, length), { code: 'INVALID_ARGUMENT', message }, String(message));
    }
    assert.throws(() => decodeRawTensor('x', 'BYTES', [2], hex('0100000041')), { message: /BYTES raw data ends after 1 of 2 elements/ });
  });

  it('round-trips random tensors of every dtype through binary requests at any alignment', () => {
    fc.assert(
      fc.property(
        fc.array(tensorArbitrary({ bytes: 'binary' }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 0, max: 7 }),
        fc.boolean(),
        (tensors, lead, allBinary) => {
          const inputs: Record<string, Tensor> = Object.fromEntries(tensors.map((t, i) => [`in${i}`, t]));
          // in0 travels as JSON when JSON can carry it exactly (not raw bytes, not full-range int64).
          const jsonSafe = (t: Tensor) => !['BYTES', 'INT64', 'UINT64'].includes(t.dtype);
          const encoded = encodeOipBinaryRequest({ inputs }, (name) => allBinary || name !== 'in0' || !jsonSafe(inputs[name]!));
          const decoded = decodeOipBinaryRequest(body(encoded.chunks, lead), encoded.headerLength);
          for (const [name, t] of Object.entries(inputs)) assertTensorEqual(decoded.inputs[name], t, name);
        },
      ),
      { numRuns: 100 },
    );
  });
});
