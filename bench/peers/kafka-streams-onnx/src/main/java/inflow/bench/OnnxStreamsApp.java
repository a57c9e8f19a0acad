package inflow.bench;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.FloatBuffer;
import java.util.Map;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Kafka Streams + ONNX Runtime Java: JSON {id, pixels:[floats]} → session.run on one row inside
 * mapValues → JSON {id, label, probabilities}. One record per call, no batching (the seed's design).
 *
 *   java -cp app.jar inflow.bench.OnnxStreamsApp --bootstrap H:P --input T --output T --app-id A
 *        --model model.onnx [--guarantee at-least-once|exactly-once] [--intra-op-threads 1]
 */
public final class OnnxStreamsApp {
  private OnnxStreamsApp() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> o = Common.args(argv);
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions options = new OrtSession.SessionOptions();
    options.setIntraOpNumThreads(Integer.parseInt(o.getOrDefault("intra-op-threads", "1")));
    OrtSession session = env.createSession(Common.need(o, "model"), options);
    String inputName = session.getInputNames().iterator().next();
    ObjectMapper json = new ObjectMapper();

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(Common.need(o, "input"), Consumed.with(Serdes.String(), Serdes.ByteArray()))
        .mapValues(value -> {
          try {
            JsonNode record = json.readTree(value);
            JsonNode pixels = record.get("pixels");
            float[] row = new float[pixels.size()];
            for (int i = 0; i < row.length; i++) row[i] = (float) pixels.get(i).asDouble();
            try (OnnxTensor input = OnnxTensor.createTensor(env, FloatBuffer.wrap(row), new long[] {1, row.length});
                OrtSession.Result result = session.run(Map.of(inputName, input))) {
              ObjectNode out = json.createObjectNode();
              out.set("id", record.get("id"));
              out.put("label", firstLong(result.get("label").orElseThrow()));
              ArrayNode probabilities = out.putArray("probabilities");
              for (float p : ((float[][]) result.get("probabilities").orElseThrow().getValue())[0]) probabilities.add(p);
              return json.writeValueAsBytes(out);
            }
          } catch (Exception e) {
            throw new RuntimeException(e);
          }
        })
        .to(Common.need(o, "output"), Produced.with(Serdes.String(), Serdes.ByteArray()));
    Common.run(builder.build(), Common.props(o), () -> {
      session.close();
      env.close();
    });
  }

  static long firstLong(OnnxValue v) throws Exception {
    Object x = v.getValue();
    return x instanceof long[][] m ? m[0][0] : ((long[]) x)[0];
  }
}
