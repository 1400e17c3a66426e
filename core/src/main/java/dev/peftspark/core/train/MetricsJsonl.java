package dev.peftspark.core.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedWriter;
import java.io.Closeable;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes {@code metrics.jsonl}: one JSON object per optimizer step, flushed as it happens so the file can be
 * followed during a run. Keys: step, epoch, loss, lr, grad_norm, examples_per_s, tokens_per_s, elapsed_ms;
 * a Spark run adds bytes_to_executors, bytes_from_executors, partitions, compute_ms, spark_overhead_ms,
 * driver_update_ms and the overhead's parts broadcast_ms, launch_ms, task_read_ms, result_ms. A non-finite number is written as null. Write it inside a staging directory ({@link OutputDir}).
 */
public final class MetricsJsonl implements TrainListener, Closeable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private final Path file;
  private final BufferedWriter out;

  public MetricsJsonl(Path file) throws IOException {
    this.file = file;
    if (file.getParent() != null) Files.createDirectories(file.getParent());
    this.out = Files.newBufferedWriter(file, StandardCharsets.UTF_8);
  }

  @Override
  public void onStep(StepMetrics m) {
    ObjectNode o = JSON.createObjectNode();
    o.put("step", m.step());
    o.put("epoch", m.epoch());
    put(o, "loss", m.loss());
    put(o, "lr", m.lr());
    put(o, "grad_norm", m.gradNorm());
    put(o, "examples_per_s", m.examplesPerS());
    put(o, "tokens_per_s", m.tokensPerS());
    o.put("elapsed_ms", m.elapsedMs());
    if (m.exchange() != null) {
      var x = m.exchange();
      o.put("bytes_to_executors", x.bytesToExecutors());
      o.put("bytes_from_executors", x.bytesFromExecutors());
      o.put("partitions", x.partitions());
      o.put("compute_ms", x.computeMs());
      o.put("spark_overhead_ms", x.sparkOverheadMs());
      o.put("driver_update_ms", x.driverUpdateMs());
      o.put("broadcast_ms", x.broadcastMs());
      o.put("launch_ms", x.launchMs());
      o.put("task_read_ms", x.taskReadMs());
      o.put("result_ms", x.resultMs());
    }
    try {
      out.write(JSON.writeValueAsString(o));
      out.write('\n');
      out.flush();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  private static void put(ObjectNode o, String key, double v) {
    if (Double.isFinite(v)) o.put(key, v);
    else o.putNull(key);
  }

  @Override
  public void close() throws IOException {
    out.close();
  }
}
