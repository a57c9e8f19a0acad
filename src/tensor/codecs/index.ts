/**
 * Wire codecs between the in-memory Tensor and the formats inflow speaks: TF Serving REST JSON,
 * Open Inference Protocol v2 JSON and its binary extension, and tensorflow.TensorProto.
 */
export { floatToHalfBits, halfBitsToFloat } from './half.ts';
export { formatFloat32, formatFloat64, parseJsonText } from './json-text.ts';
export { decodeBase64, isB64Object, type JsonDialect } from './json-tensor.ts';
export {
  DEFAULT_SIGNATURE_NAME,
  decodeTfPredict,
  decodeTfPredictResponse,
  encodeTfPredict,
  encodeTfPredictRequest,
  type TfEncodeOptions,
  type TfJsonFormat,
  type TfPredictRequest,
  type TfSignature,
  type TfTensorSpec,
  tfDialect,
  tfSignatureName,
} from './tf-json.ts';
export {
  type BinaryCursor,
  decodeOipRequest,
  decodeOipResponse,
  decodeOipTensor,
  encodeOipRequest,
  encodeOipRequestParts,
  encodeOipResponse,
  encodeOipResponseParts,
  type OipBodyParts,
  type OipParameters,
  type OipRequest,
  type OipRequestedOutput,
  type OipRequestToEncode,
  type OipResponse,
  oipDatatype,
  oipDialect,
  wantsBinaryOutput,
} from './oip-json.ts';
export {
  decodeOipBinaryRequest,
  decodeOipBinaryResponse,
  encodeOipBinaryRequest,
  encodeOipBinaryResponse,
  INFERENCE_HEADER_CONTENT_LENGTH,
  type OipBinaryBody,
  type RawInputSpec,
} from './oip-binary.ts';
export { decodeRawTensor, encodeRawTensor, numericBytes, numericFromBytes, rawByteLength } from './raw-tensor.ts';
export {
  decodeTensorProtoBytes,
  dtypeOfTfDataType,
  encodeTensorProtoBytes,
  getTensorProtoType,
  type LongLike,
  MAX_BROADCAST_ELEMENTS,
  TENSOR_PROTO_FILE,
  type TensorProtoEncodeOptions,
  type TensorProtoObject,
  tensorFromProto,
  tensorToProto,
  tfDataTypeOf,
} from './tensor-proto.ts';
