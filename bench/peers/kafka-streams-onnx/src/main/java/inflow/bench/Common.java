package inflow.bench;

import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;

/** Argument parsing and the Kafka Streams settings both peers share (so they differ only in how they infer). */
final class Common {
  private Common() {}

  /** --key value pairs. */
  static Map<String, String> args(String[] argv) {
    Map<String, String> out = new HashMap<>();
    for (int i = 0; i + 1 < argv.length; i += 2) {
      if (!argv[i].startsWith("--")) throw new IllegalArgumentException("expected --key value pairs, got " + argv[i]);
      out.put(argv[i].substring(2), argv[i + 1]);
    }
    return out;
  }

  static String need(Map<String, String> o, String key) {
    String v = o.get(key);
    if (v == null) throw new IllegalArgumentException("missing --" + key);
    return v;
  }

  /**
   * Defaults except: earliest offsets (the input is pre-produced), commit every 100 ms under both
   * guarantees (inflow's pipelines use the same), and the client's linger.ms of 5 ms instead of
   * Kafka Streams' 100 ms override (which would add up to 100 ms of latency to every output).
   */
  static Properties props(Map<String, String> o) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, need(o, "app-id"));
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, need(o, "bootstrap"));
    p.put(
        StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
        "exactly-once".equals(o.getOrDefault("guarantee", "at-least-once")) ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(o.getOrDefault("threads", "1")));
    p.put(StreamsConfig.STATE_DIR_CONFIG, o.getOrDefault("state-dir", System.getProperty("java.io.tmpdir") + "/kstreams-bench"));
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    p.put(StreamsConfig.producerPrefix(ProducerConfig.LINGER_MS_CONFIG), 5);
    return p;
  }

  /** Starts the topology, prints READY once running, and blocks until SIGTERM. */
  static void run(Topology topology, Properties props, AutoCloseable resources) throws Exception {
    KafkaStreams streams = new KafkaStreams(topology, props);
    CountDownLatch stopped = new CountDownLatch(1);
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING) System.out.println("READY");
      if (now == KafkaStreams.State.ERROR) {
        System.err.println("streams failed");
        stopped.countDown();
      }
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close();
      stopped.countDown();
    }));
    streams.start();
    stopped.await();
    streams.close();
    resources.close();
  }
}
