/**
 * Where the example models shipped with inflow live (`models/repository` of the repository and of
 * the npm package: src/repository/ and dist/repository/ both sit two levels below it).
 */
import { join } from 'node:path';

/**
 * Absolute path of the example model repository (digits-mlp, iris-mlp, … with their
 * `config.yaml` and ONNX versions; see models/README.md): for trying the library and the CLI
 * before you have models of your own.
 */
export const exampleModelRepository: string = join(import.meta.dirname, '..', '..', 'models', 'repository');
