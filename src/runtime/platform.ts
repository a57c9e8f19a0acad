/** The platforms a model's config.yaml can name (`platform:`), each a backend of src/runtime/. */
export const Platform = {
  ONNX: 'onnx',
  LOOKUP: 'lookup',
  TRANSFORM: 'transform',
  PIPELINE: 'pipeline',
  MODULE: 'module',
} as const;
export type Platform = (typeof Platform)[keyof typeof Platform];

/** Whether `value` names a platform. */
export function isPlatform(value: unknown): value is Platform {
  return typeof value === 'string' && (Object.values(Platform) as string[]).includes(value);
}
