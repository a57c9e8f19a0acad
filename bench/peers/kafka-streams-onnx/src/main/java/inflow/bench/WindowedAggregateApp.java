package inflow.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Map;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The stateful benchmark's Kafka Streams peer (bench/streams/stateful-compare.ts): per record key,
 * count and mean of the JSON field "amount" over 10 s tumbling event-time windows (the record
 * timestamp), every update emitted downstream as JSON {key, start, count, mean}.
 *
 * groupByKey (no repartition: the input is keyed) → windowedBy(10 s, no grace) → aggregate into a
 * RocksDB window store (the default store; changelogged) of 16 bytes (count: long, sum: double).
 * The record cache is off (statestore.cache.max.bytes 0) so every update is forwarded, as inflow's
 * and Quix's "emit every update" modes do; with the cache on, Kafka Streams forwards only the last
 * update per key and commit interval, which is a different output.
 *
 *   java -cp app.jar inflow.bench.WindowedAggregateApp --bootstrap H:P --input T --output T --app-id A
 *        [--guarantee at-least-once|exactly-once] [--state-dir D] [--window-ms 10000] [--cache-bytes 0]
 */
public final class WindowedAggregateApp {
  private WindowedAggregateApp() {}

  public static void main(String[] argv) throws Exception {
    Map<String, String> o = Common.args(argv);
    long windowMs = Long.parseLong(o.getOrDefault("window-ms", "10000"));
    ObjectMapper json = new ObjectMapper();

    StreamsBuilder builder = new StreamsBuilder();
    builder.stream(Common.need(o, "input"), Consumed.with(Serdes.String(), Serdes.ByteArray()))
        .mapValues(value -> {
          try {
            return json.readTree(value).get("amount").asDouble();
          } catch (Exception e) {
            throw new RuntimeException(e);
          }
        })
        .groupByKey(Grouped.with(Serdes.String(), Serdes.Double()))
        .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofMillis(windowMs)))
        .aggregate(
            () -> new byte[16],
            (key, amount, agg) -> {
              ByteBuffer b = ByteBuffer.wrap(agg);
              long count = b.getLong(0) + 1;
              double sum = b.getDouble(8) + amount;
              return ByteBuffer.allocate(16).putLong(count).putDouble(sum).array();
            },
            Materialized.<String, byte[], WindowStore<Bytes, byte[]>>as("window-agg")
                .withKeySerde(Serdes.String())
                .withValueSerde(Serdes.ByteArray()))
        .toStream()
        .map((windowed, agg) -> {
          ByteBuffer b = ByteBuffer.wrap(agg);
          long count = b.getLong(0);
          ObjectNode out = json.createObjectNode();
          out.put("key", windowed.key());
          out.put("start", windowed.window().start());
          out.put("count", count);
          out.put("mean", b.getDouble(8) / count);
          try {
            return org.apache.kafka.streams.KeyValue.pair(windowed.key(), json.writeValueAsBytes(out));
          } catch (Exception e) {
            throw new RuntimeException(e);
          }
        })
        .to(Common.need(o, "output"), Produced.with(Serdes.String(), Serdes.ByteArray()));

    var props = Common.props(o);
    props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, Long.parseLong(o.getOrDefault("cache-bytes", "0")));
    Common.run(builder.build(), props, () -> {});
  }
}
