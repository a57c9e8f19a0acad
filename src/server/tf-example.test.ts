import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TensorSpec } from '../runtime/servable.ts';
import type { InferRequest } from '../serving/types.ts';
import { floatToHalfBits, halfBitsToFloat } from '../tensor/codecs/index.ts';
import { stringTensor, type Tensor } from '../tensor/tensor.ts';
import { examplesToInputs, MAX_EXAMPLES, type TfExample, type TfFeature, withContext } from './tf-example.ts';
import { classificationsOf, classifyPlan, regressionsOf, regressPlan, runExampleTasks } from './tf-example-results.ts';

const floats = (...values: number[]): TfFeature => ({ kind: 'float', values });
const ints = (...values: bigint[]): TfFeature => ({ kind: 'int64', values });
const bytes = (...values: string[]): TfFeature => ({ kind: 'bytes', values: values.map((v) => new TextEncoder().encode(v)) });
const ex = (features: Record<string, TfFeature>): TfExample => new Map(Object.entries(features));
const spec = (name: string, dtype: TensorSpec['dtype'], shape: number[]): TensorSpec => ({ name, dtype, shape });

describe('tf.Examples onto a signature', () => {
  const x3 = spec('x', 'FP32', [-1, 3]);

  it('fills each row from the feature named like the input, or from <input>_0 … <input>_{F-1}', () => {
    const inputs = examplesToInputs(
      [ex({ x: floats(1, 2, 3), other: bytes('ignored') }), ex({ x_0: floats(4), x_1: ints(5n), x_2: floats(6.5) })],
      [x3],
    );
    assert.deepEqual(inputs.x?.shape, [2, 3]);
    assert.deepEqual([...(inputs.x?.data as Float32Array)], [1, 2, 3, 4, 5, 6.5]);
  });

  it('gives a [-1] input one value per Example, and a [-1, 2, 2] input four in row-major order', () => {
    const inputs = examplesToInputs(
      [ex({ a: ints(7n), m: floats(1, 2, 3, 4) })],
      [spec('a', 'INT64', [-1]), spec('m', 'FP64', [-1, 2, 2])],
    );
    assert.deepEqual(inputs.a, { dtype: 'INT64', shape: [1], data: BigInt64Array.from([7n]) });
    assert.deepEqual(inputs.m, { dtype: 'FP64', shape: [1, 2, 2], data: Float64Array.from([1, 2, 3, 4]) });
  });

  it('converts to every numeric dtype exactly and reads bytes_list into BYTES inputs', () => {
    const inputs = examplesToInputs(
      [ex({ big: ints((1n << 62n) + 1n), u: floats(255), b: ints(1n), h: floats(0.5), s: bytes('héllo') })],
      [spec('big', 'INT64', [-1]), spec('u', 'UINT8', [-1]), spec('b', 'BOOL', [-1]), spec('h', 'FP16', [-1]), spec('s', 'BYTES', [-1])],
    );
    assert.equal((inputs.big?.data as BigInt64Array)[0], (1n << 62n) + 1n);
    assert.equal((inputs.u?.data as Uint8Array)[0], 255);
    assert.equal((inputs.b?.data as Uint8Array)[0], 1);
    assert.equal(halfBitsToFloat((inputs.h?.data as Uint16Array)[0] as number), 0.5);
    assert.equal(new TextDecoder().decode((inputs.s?.data as Uint8Array[])[0]), 'héllo');
  });

  it('lets an Example’s own feature win over the context’s', () => {
    const merged = withContext([ex({ x: floats(1) }), ex({})], ex({ x: floats(9), y: floats(2) }));
    assert.deepEqual(
      merged.map((e) => [(e.get('x')?.values as number[])[0], (e.get('y')?.values as number[])[0]]),
      [
        [1, 2],
        [9, 2],
      ],
    );
  });

  const rejects: Array<[string, TfExample[], TensorSpec[], RegExp, string?]> = [
    ['no Examples', [], [x3], /Input is empty; expected at least one tf\.Example/],
    [
      'neither form of the feature',
      [ex({ y: floats(1) })],
      [x3],
      /^example 0: no feature "x" \(3 values\) nor "x_0" … "x_2" \(one value each\); expected one of these for model input "x" \(FP32 \[-1, 3\]\)$/,
    ],
    ['a short feature', [ex({ x: floats(1, 2) })], [x3], /^example 0: feature "x" has 2 values; expected 3 for model input "x"/],
    [
      'a missing indexed feature',
      [ex({ x: floats(1, 2, 3) }), ex({ x_0: floats(1), x_2: floats(1) })],
      [x3],
      /^example 1: feature "x_1" is missing; expected "x_0" … "x_2", one value each/,
    ],
    [
      'an indexed feature with two values',
      [ex({ x_0: floats(1, 2), x_1: floats(1), x_2: floats(1) })],
      [x3],
      /"x_0" has 2 values; expected 1/,
    ],
    ['bytes for a number', [ex({ x: bytes('a', 'b', 'c') })], [x3], /feature "x" is a bytes_list; expected a float_list or int64_list/],
    ['numbers for BYTES', [ex({ s: floats(1) })], [spec('s', 'BYTES', [-1])], /is a float_list; expected a bytes_list/],
    [
      'a fraction for an integer',
      [ex({ i: floats(1.5) })],
      [spec('i', 'INT32', [-1])],
      /has the value 1\.5; expected integers for model input "i" \(INT32/,
    ],
    ['an out-of-range integer', [ex({ i: ints(300n) })], [spec('i', 'UINT8', [-1])], /has the value 300; expected 0 … 255/],
  ];
  for (const [what, examples, inputs, message] of rejects) {
    it(`rejects ${what} with INVALID_ARGUMENT saying what was expected`, () => {
      assert.throws(() => examplesToInputs(examples, inputs), { code: 'INVALID_ARGUMENT', message });
    });
  }

  it('rejects more Examples than one request may carry', () => {
    const many = Array.from({ length: MAX_EXAMPLES + 1 }, () => ex({ x: floats(1, 2, 3) }));
    assert.throws(() => examplesToInputs(many, [x3]), { code: 'INVALID_ARGUMENT', message: /expected at most 65536/ });
  });

  it('refuses inputs whose shape Examples cannot fill with FAILED_PRECONDITION', () => {
    for (const shape of [[], [-1, -1]]) {
      assert.throws(() => examplesToInputs([ex({ x: floats(1) })], [spec('x', 'FP32', shape)]), {
        code: 'FAILED_PRECONDITION',
        message: /cannot be fed from tf\.Examples; expected a batch dimension followed by fixed dimensions/,
      });
    }
  });
});

describe('classification and regression results', () => {
  const digits = [spec('label', 'INT64', [-1]), spec('probabilities', 'FP32', [-1, 3])];
  const scores: Tensor = { dtype: 'FP32', shape: [2, 3], data: Float32Array.from([0.25, 0.5, 0.25, 0.75, 0.125, 0.125]) };
  const label: Tensor = { dtype: 'INT64', shape: [2], data: BigInt64Array.from([1n, 0n]) };

  it('answers every class with its index as label and its score, in the model’s order', () => {
    const plan = classifyPlan('m', digits);
    assert.deepEqual(plan, { scores: digits[1] });
    assert.deepEqual(classificationsOf({ probabilities: scores }, plan, 2), [
      [
        { label: '0', score: 0.25 },
        { label: '1', score: 0.5 },
        { label: '2', score: 0.25 },
      ],
      [
        { label: '0', score: 0.75 },
        { label: '1', score: 0.125 },
        { label: '2', score: 0.125 },
      ],
    ]);
  });

  it('names the predicted class when the model gives its name, and every class from a [-1, C] classes output', () => {
    const pipeline = [spec('class', 'BYTES', [-1]), ...digits];
    const plan = classifyPlan('m', pipeline);
    const named = classificationsOf({ probabilities: scores, label, class: stringTensor([2], ['one', 'zero']) }, plan, 2);
    assert.deepEqual(
      named.map((row) => row.map((c) => c.label)),
      [
        ['0', 'one', '2'],
        ['zero', '1', '2'],
      ],
    );
    const withClasses = classifyPlan('m', [spec('classes', 'BYTES', [-1, 3]), ...digits]);
    const classes = stringTensor([2, 3], ['a', 'b', 'c', 'd', 'e', 'f']);
    const rows = classificationsOf({ probabilities: scores, classes }, withClasses, 2);
    assert.deepEqual(
      rows.map((row) => row.map((c) => c.label)),
      [
        ['a', 'b', 'c'],
        ['d', 'e', 'f'],
      ],
    );
  });

  it('answers a class-only model with its class and score 0, and reads FP16 scores', () => {
    assert.deepEqual(classificationsOf({ label }, classifyPlan('m', [digits[0] as TensorSpec]), 2), [
      [{ label: '1', score: 0 }],
      [{ label: '0', score: 0 }],
    ]);
    const half: Tensor = { dtype: 'FP16', shape: [1, 1], data: Uint16Array.from([floatToHalfBits(0.5)]) };
    assert.deepEqual(classificationsOf({ s: half }, classifyPlan('m', [spec('s', 'FP16', [-1, 1])]), 1), [[{ label: '0', score: 0.5 }]]);
  });

  it('refuses models that cannot classify or regress with FAILED_PRECONDITION saying what was expected', () => {
    assert.throws(() => classifyPlan('m', [spec('y', 'FP32', [-1])]), {
      code: 'FAILED_PRECONDITION',
      message:
        'model "m" has no output to classify with (it has y FP32 [-1]); expected a floating-point scores output [-1, C] such as "probabilities", or a class output [-1]',
    });
    assert.throws(() => classifyPlan('m', [spec('a', 'FP32', [-1, 2]), spec('b', 'FP32', [-1, 2])]), {
      code: 'FAILED_PRECONDITION',
      message: /several score outputs \(a FP32 \[-1, 2\], b FP32 \[-1, 2\]\); expected one, or one named "scores" or "probabilities"/,
    });
    assert.throws(() => regressPlan('m', digits), {
      code: 'FAILED_PRECONDITION',
      message: /no output to regress with .*; expected one floating-point output of shape \[-1\] or \[-1, 1\]/,
    });
  });

  it('regresses from a [-1] or [-1, 1] floating-point output, preferring one named "outputs"', () => {
    const chosen = regressPlan('m', [spec('a', 'FP32', [-1]), spec('outputs', 'FP64', [-1, 1])]);
    assert.equal(chosen.name, 'outputs');
    assert.deepEqual(
      regressionsOf({ outputs: { dtype: 'FP64', shape: [2, 1], data: Float64Array.from([1.5, -2]) } }, chosen, 2),
      [1.5, -2],
    );
  });

  it('runs classify and regress on one inference that asks only for the outputs they need', async () => {
    const seen: InferRequest[] = [];
    const results = await runExampleTasks(
      async (request) => {
        seen.push(request);
        const x = request.inputs.x?.data as Float32Array;
        return {
          model: 'm',
          version: 4,
          outputs: {
            probabilities: { dtype: 'FP32', shape: [2, 2], data: Float32Array.from([x[0] as number, 1, x[1] as number, 0]) },
            y: { dtype: 'FP32', shape: [2], data: Float32Array.from([10, 20]) },
          },
        };
      },
      {
        target: { model: 'm' },
        signature: {
          inputs: [spec('x', 'FP32', [-1])],
          outputs: [spec('probabilities', 'FP32', [-1, 2]), spec('y', 'FP32', [-1]), spec('z', 'FP32', [-1, 5])],
        },
        examples: [ex({ x: floats(0.5) }), ex({ x: floats(0.25) })],
        tasks: new Set(['classify', 'regress']),
      },
    );
    assert.deepEqual(seen[0]?.outputs, ['probabilities', 'y']);
    assert.deepEqual(results.regressions, [10, 20]);
    assert.deepEqual(results.classifications?.[1], [
      { label: '0', score: 0.25 },
      { label: '1', score: 0 },
    ]);
    assert.equal(results.version, 4);
  });
});
