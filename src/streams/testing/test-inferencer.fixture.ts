/**
 * A deterministic in-process Inferencer for operator tests: model "double" returns `y = 2·x`
 * for an FP32 input `x` of any row shape, records each call's batch size, and can be told to
 * fail (`failNext`) or to reject rows whose first element is negative (a "poison" row).
 */
import { InflowError } from '../../errors.ts';
import type { InferRequest, InferResponse, Inferencer, ModelMetadata } from '../../serving/types.ts';

export interface TestInferencer extends Inferencer {
  /** Batch size of each call, in call order. */
  readonly calls: number[];
  /** The next `n` calls fail with `code`. */
  failNext(n: number, code: InflowError['code']): void;
  /** While set, calls wait for this promise before answering. */
  gate: Promise<void> | undefined;
}

export function createTestInferencer(): TestInferencer {
  let failures = 0;
  let failCode: InflowError['code'] = 'UNAVAILABLE';
  const calls: number[] = [];
  const self: TestInferencer = {
    calls,
    gate: undefined,
    failNext(n, code) {
      failures = n;
      failCode = code;
    },
    async infer(request: InferRequest): Promise<InferResponse> {
      const x = request.inputs.x;
      if (!x || x.dtype !== 'FP32') throw new InflowError('INVALID_ARGUMENT', 'input "x": expected FP32');
      calls.push(x.shape[0] as number);
      if (self.gate) await self.gate;
      if (failures > 0) {
        failures--;
        throw new InflowError(failCode, `injected ${failCode}`);
      }
      const data = x.data as Float32Array;
      const row = data.length / (x.shape[0] as number);
      for (let i = 0; i < data.length; i += row) {
        if ((data[i] as number) < 0) throw new InflowError('INVALID_ARGUMENT', `row ${i / row}: x must be ≥ 0`);
      }
      return { model: request.model, version: 3, outputs: { y: { dtype: 'FP32', shape: [...x.shape], data: data.map((v) => v * 2) } } };
    },
    async metadata(): Promise<ModelMetadata> {
      return { name: 'double', platform: 'test', versions: [3], labels: {}, inputs: [], outputs: [] };
    },
    ready: async () => true,
    close: async () => undefined,
  };
  return self;
}
