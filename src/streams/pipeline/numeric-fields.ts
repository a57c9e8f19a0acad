/**
 * Which top-level fields of a pipeline's JSON source records its predict steps read as numeric
 * arrays: the source then decodes those straight into typed arrays (src/kafka/json-numeric.ts),
 * the tensor data an FP32 input takes without another copy. Only pipelines whose steps treat a
 * typed array exactly like the JSON array it came from qualify — filter, select, rename, predict,
 * split and to (they read, move or write fields; JSON output writes the same array back) — so
 * joins and aggregates (their stores and changelogs) keep plain JSON values.
 */
import type { NumericFieldType } from '../../kafka/json-numeric.ts';
import type { PipelineStep } from './pipeline-config.ts';

const SAFE = new Set(['filter', 'select', 'rename', 'predict', 'split', 'to']);

/** Field → element type for each `field:` input (no dots, no delimiter, FP32 or FP64); empty when a step rules it out. */
export function numericInputFields(steps: readonly PipelineStep[]): Map<string, NumericFieldType> {
  const fields = new Map<string, NumericFieldType>();
  const visit = (list: readonly PipelineStep[]): boolean => {
    for (const step of list) {
      const op = Object.keys(step).find((k) => step[k as keyof PipelineStep] !== undefined);
      if (op === 'source') continue;
      if (op === undefined || !SAFE.has(op)) return false;
      if (step.split && !step.split.branches.every((b) => visit(b.pipeline))) return false;
      for (const input of Object.values(step.predict?.inputs ?? {})) {
        const { field, delimiter, dtype = 'FP32' } = input;
        if (field === undefined || field === '.' || field.includes('.') || delimiter !== undefined) continue;
        if (dtype !== 'FP32' && dtype !== 'FP64') continue;
        // Two predicts reading one field as FP32 and FP64: doubles serve both (FP32 converts them).
        fields.set(field, fields.get(field) === 'FP64' ? 'FP64' : dtype);
      }
    }
    return true;
  };
  return visit(steps) ? fields : new Map<string, NumericFieldType>();
}
