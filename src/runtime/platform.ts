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

/**
 * Platforms whose version folder holds code that inflow runs in its own process (module: a
 * JavaScript/TypeScript file it imports). Whoever can place a version of such a model can run
 * anything as the server's user, so model delivery refuses them unless allowed (src/delivery).
 * The others read data only: ONNX graphs run inside onnxruntime with no custom-op libraries,
 * lookup tables, transform steps from a fixed op list, pipelines of other models.
 */
export const EXECUTABLE_PLATFORMS: readonly Platform[] = [Platform.MODULE];

/** Whether a model of `platform` runs code from its version folder. */
export function isExecutablePlatform(platform: unknown): boolean {
  return (EXECUTABLE_PLATFORMS as readonly unknown[]).includes(platform);
}
