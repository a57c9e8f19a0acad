/** The serving layer: the Inferencer interface, the local InferenceService, batcher and router. */
export type { InferOptions, InferRequest, InferResponse, Inferencer, ModelMetadata, ResolvedRoute } from './types.ts';
export { createInferenceService, type InferenceService, type InferenceServiceOptions } from './inference-service.ts';
export { createLocalInference, type LocalInference, type LocalInferenceOptions } from './local-inference.ts';
export { createDynamicBatcher, type BatcherOptions, type DynamicBatcher } from './dynamic-batcher.ts';
export { createRouter, type Route, type RouteState, type Router } from './router.ts';
