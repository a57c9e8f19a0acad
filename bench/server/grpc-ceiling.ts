/**
 * The gRPC transport's ceiling: a bare unary server that answers every OIP ModelInfer (or TF
 * Predict) with a precomputed response of the same bytes inflow's server returns for digits-mlp,
 * 1 row — no model, no batcher, no worker hop, no protobuf codec on the hot path — so that a load
 * generator measures the stack alone, on the same cores and with the same messages as inflow.
 *
 *   node bench/server/grpc-ceiling.ts --stack grpc-js|http2 [--port 18501] [--codec]
 *
 * `grpc-js`: @grpc/grpc-js Server with identity (de)serializers. `http2`: a handler on node:http2
 * that reads the length-prefixed request and writes headers, the prefixed response and
 * `grpc-status: 0` trailers. `--codec` (grpc-js only) decodes each request and encodes the
 * response object with proto-loader's protobufjs codec, as a plain grpc-js server does.
 */
import http2 from 'node:http2';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { GrpcServiceName, loadGrpcProtos } from '../../src/server/grpc/grpc-protos.ts';

const { values } = parseArgs({
  options: {
    stack: { type: 'string', default: 'grpc-js' },
    port: { type: 'string', default: '18501' },
    codec: { type: 'boolean', default: false },
  },
});

const { services } = loadGrpcProtos();
const infer = services[GrpcServiceName.INFERENCE].ModelInfer as grpc.MethodDefinition<object, object>;
const predict = services[GrpcServiceName.PREDICTION].Predict as grpc.MethodDefinition<object, object>;
const probabilities = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.55];
// What inflow answers for digits-mlp, 1 row, typed contents (see bench/server/grpc-load.ts).
const inferResponse = {
  model_name: 'digits-mlp',
  model_version: '1',
  id: '',
  outputs: [
    { name: 'label', datatype: 'INT64', shape: ['1'], contents: { int64_contents: ['4'] } },
    { name: 'probabilities', datatype: 'FP32', shape: ['1', '10'], contents: { fp32_contents: probabilities } },
  ],
};
const predictResponse = {
  model_spec: { name: 'digits-mlp', version: { value: '1' }, signature_name: 'serving_default' },
  outputs: {
    label: { dtype: 'DT_INT64', tensor_shape: { dim: [{ size: '1' }] }, int64_val: ['4'] },
    probabilities: { dtype: 'DT_FLOAT', tensor_shape: { dim: [{ size: '1' }, { size: '10' }] }, float_val: probabilities },
  },
};
const precomputed = new Map<string, Buffer>([
  [infer.path, infer.responseSerialize(inferResponse)],
  [predict.path, predict.responseSerialize(predictResponse)],
]);
const port = Number(values.port);

if (values.stack === 'http2') {
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const body = precomputed.get(headers[':path'] ?? '');
    // A client that goes away mid-call (ghz at the end of a run) resets the stream: nothing to do.
    stream.on('error', () => undefined);
    stream.on('data', () => undefined);
    stream.on('end', () => {
      if (stream.destroyed) return;
      if (!body) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12' }, { endStream: true });
        return;
      }
      const prefix = Buffer.allocUnsafe(5);
      prefix.writeUInt8(0, 0);
      prefix.writeUInt32BE(body.length, 1);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.concat([prefix, body]));
    });
  });
  server.listen(port, '127.0.0.1', () => console.log(`gRPC server on 127.0.0.1:${port}`));
} else {
  const server = new grpc.Server();
  const identity = (b: Buffer): Buffer => b;
  for (const [method, response] of [
    [infer, inferResponse],
    [predict, predictResponse],
  ] as const) {
    const name = method.path.slice(method.path.lastIndexOf('/') + 1);
    const definition = values.codec ? method : { ...method, requestDeserialize: identity, responseSerialize: identity };
    const answer = values.codec ? response : precomputed.get(method.path);
    server.addService(
      { [name]: definition },
      {
        [name]: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, answer),
      },
    );
  }
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), () => console.log(`gRPC server on 127.0.0.1:${port}`));
}
