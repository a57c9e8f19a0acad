/**
 * The REST transport of the model server: TF Serving REST and Open Inference Protocol v2 REST over
 * `node:http`, with metrics, an admin API, limits and a graceful shutdown.
 */
export { createRestHandler, type RestHandler } from './rest-handler.ts';
export { type RestServer, startRestServer } from './rest-server.ts';
export {
  type BearerAuth,
  DEFAULT_MAX_BODY_BYTES,
  DEFAULT_MAX_CONCURRENT_REQUESTS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type RestHandlerOptions,
  type RestServerOptions,
} from './rest-options.ts';
export { OIP_EXTENSIONS, oipPlatform } from './oip-routes.ts';
export { tfModelMetadata, tfModelStatus } from './tf-serving-json.ts';
