/**
 * The schema of `transform.yaml` (the transform platform): the inputs, then steps that each read
 * named tensors (inputs or earlier outputs) and write a new one, then which names are outputs.
 *
 * ```yaml
 * inputs:
 *   - { name: features, dtype: FP32, shape: [-1, 30] }
 *   - { name: country, dtype: BYTES, shape: [-1] }
 * steps:
 *   - { op: standardize, input: features, output: scaled, mean: [...], std: [...] }
 *   - { op: hash-bucket, input: country, output: country_id, buckets: 1000 }
 *   - { op: one-hot, input: country, output: country_1h, categories: [DE, US] }
 *   - { op: concat, inputs: [scaled, country_1h], output: x }
 * outputs: [x]          # default: the last step's output
 * ```
 */
import { z } from 'zod';
import { DType } from '../tensor/dtype.ts';

const ref = z.string().min(1);
/** One value for every feature, or one per feature (the last dim). */
const perFeature = z.union([z.number(), z.array(z.number()).min(1)]);
const io = { input: ref, output: ref };

export const transformStepSchema = z.discriminatedUnion('op', [
  /** (x − mean) / std */
  z.strictObject({ op: z.literal('standardize'), ...io, mean: perFeature, std: perFeature }),
  /** (x − min) / (max − min) scaled into `range` (default [0, 1]); a constant feature (max = min) gives range[0]. */
  z.strictObject({
    op: z.literal('min-max'),
    ...io,
    min: perFeature,
    max: perFeature,
    range: z.tuple([z.number(), z.number()]).default([0, 1]),
  }),
  /** Clamps into [min, max]; either bound may be left out. */
  z.strictObject({ op: z.literal('clip'), ...io, min: perFeature.optional(), max: perFeature.optional() }),
  /** log(1 + x); x ≤ −1 fails the call. */
  z.strictObject({ op: z.literal('log'), ...io }),
  /** [N] or [N, 1] categories → FP32 [N, categories]; an unknown category is a zero row or an error. */
  z.strictObject({
    op: z.literal('one-hot'),
    ...io,
    categories: z.union([z.array(z.string()).min(1), z.array(z.int()).min(1)]),
    unknown: z.enum(['zeros', 'error']).default('zeros'),
  }),
  /** INT64 index of the bucket: the number of boundaries ≤ x (TensorFlow's Bucketize). */
  z.strictObject({ op: z.literal('bucketize'), ...io, boundaries: z.array(z.number()).min(1) }),
  /** BYTES → INT64 murmur3_x86_32(utf8, seed) mod buckets (see murmur3.ts). */
  z.strictObject({
    op: z.literal('hash-bucket'),
    ...io,
    buckets: z.int().min(1).max(0x7fffffff),
    seed: z.int().min(0).max(0xffffffff).default(0),
  }),
  /** Columns of [N, F], in the order given → [N, columns]. */
  z.strictObject({ op: z.literal('select'), ...io, columns: z.array(z.int().min(0)).min(1) }),
  /** [N] and [N, F] tensors side by side → FP32 [N, ΣF]. */
  z.strictObject({ op: z.literal('concat'), inputs: z.array(ref).min(1), output: ref }),
  /** Numeric dtype conversion (toward zero for integers). */
  z.strictObject({ op: z.literal('cast'), ...io, to: z.enum(['FP32', 'FP64', 'INT32', 'INT64']) }),
]);
export type TransformStep = z.output<typeof transformStepSchema>;

export const transformFileSchema = z.strictObject({
  inputs: z
    .array(
      z.strictObject({
        name: ref,
        dtype: z.enum(Object.keys(DType) as [DType, ...DType[]]),
        shape: z.array(z.int().min(-1)).min(1),
      }),
    )
    .min(1),
  steps: z.array(transformStepSchema).min(1),
  outputs: z.array(ref).min(1).optional(),
});
export type TransformFile = z.output<typeof transformFileSchema>;
