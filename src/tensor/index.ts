/** Tensors, dtypes, batch operations (codecs: ./codecs/index.ts). */
export { arrayTypeOf, DType, isDType, type NumericArray } from './dtype.ts';
export { createTensor, elementCount, MAX_ELEMENTS, stringTensor, type Tensor, type TensorData, tensorStrings, zeros } from './tensor.ts';
export { batchKey, concatBatch, splitBatch } from './batch.ts';
