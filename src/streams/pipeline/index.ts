/** Pipelines declared in YAML: the file's schema, its validation, and building it into a topology. */
export {
  loadPipelineFile,
  oneLineConfigError,
  OPERATORS,
  type Operator,
  type PipelineConfig,
  type PipelineConfigInput,
  pipelineConfigSchema,
  type PipelineStep,
  parsePipelineConfig,
  SerdeName,
  validatePipelineConfig,
} from './pipeline-config.ts';
export { type BuiltPipeline, buildPipeline, type PipelineDeps } from './build-pipeline.ts';
