package dev.peftspark.spark.dist;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.RunOutputs;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The packaged fat jar through {@code org.apache.spark.deploy.SparkSubmit --master local[2]}, in its own JVM
 * whose classpath stands in for a Spark installation (Spark, Hadoop and their dependencies): the project's
 * classes, ND4J and the MiniLM weights must come from the jar.
 */
class SparkSubmitIT {
  @TempDir Path tmp;

  static Path fatJar() throws IOException {
    try (Stream<Path> s = Files.list(Path.of("target"))) {
      return s.filter(p -> p.getFileName().toString().matches("peft-spark-[0-9].*\\.jar")
          && !p.getFileName().toString().contains("original")).findFirst()
          .orElseThrow(() -> new IllegalStateException("no target/peft-spark-*.jar: run mvn verify"))
          .toAbsolutePath();
    }
  }

  @Test
  void sparkSubmitTrainsWithTheFatJar() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 64, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 32, tmp);
    Path out = tmp.resolve("out");
    Path cfg = tmp.resolve("job.yaml");
    Files.writeString(cfg, String.join("\n",
        "runner: spark", "output_dir: " + out, "data: {train: [" + train + "], test: [" + test + "], max_length: 64}",
        "lora: {r: 8, alpha: 16, target_modules: [query, value]}",
        "train: {batch_size: 16, max_steps: 4, lr: 1e-3}", "spark: {master: 'local[1]', partitions: 2}", ""));
    String sparkCp = sparkInstallClasspath();
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "@" + Path.of("..", "conf", "jvm.options").toAbsolutePath().normalize(), "-Xmx3g",
        "-cp", sparkCp, "org.apache.spark.deploy.SparkSubmit", "--master", "local[2]",
        "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--conf", "spark.ui.enabled=false", "--class", "dev.peftspark.spark.cli.Main", fatJar().toString(),
        "train", "--config", cfg.toString()));
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(tmp.resolve("log.txt").toFile());
    pb.environment().put("SPARK_LOCAL_IP", "127.0.0.1");
    pb.environment().put("PEFT_SPARK_CACHE", Files.createDirectories(tmp.resolve("cache")).toString());
    Process p = pb.start();
    boolean done = p.waitFor(8, TimeUnit.MINUTES);
    if (!done) p.destroyForcibly();
    String log = Files.readString(tmp.resolve("log.txt"));
    assertTrue(done, "spark-submit timed out:\n" + tail(log));
    assertEquals(0, p.exitValue(), tail(log));
    assertTrue(Files.isRegularFile(out.resolve(AdapterFiles.WEIGHTS)), tail(log));
    assertTrue(log.contains("bytes/step"), "the summary reports bytes per step:\n" + tail(log));
    List<String> lines = Files.readAllLines(out.resolve(RunOutputs.METRICS));
    assertEquals(4, lines.size());
    // spark-submit's --master wins over spark.master; partitions come from the config.
    assertEquals(2, new ObjectMapper().readTree(lines.get(0)).get("partitions").asInt());
    assertTrue(log.contains("spark master local[2]"), tail(log));
  }

  /**
   * What a Spark installation's jars/ folder holds: this test JVM's classpath without the project's own classes
   * and without the libraries only the project brings (ND4J and its natives, tokenizers, picocli, the model).
   */
  static String sparkInstallClasspath() {
    String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    return java.util.Arrays.stream(cp.split(java.io.File.pathSeparator))
        .filter(e -> !e.contains("/target/") && !e.contains("/org/nd4j/") && !e.contains("/org/bytedeco/")
            && !e.contains("/ai/djl/") && !e.contains("/info/picocli/") && !e.contains("/dev/langchain4j/")
            && !e.contains("/com/microsoft/onnxruntime/") && !e.contains("/junit/") && !e.contains("/org/junit/")
            && !e.contains("hadoop-client-minicluster"))
        .collect(java.util.stream.Collectors.joining(java.io.File.pathSeparator));
  }

  private static String tail(String s) {
    return s.length() <= 6000 ? s : s.substring(s.length() - 6000);
  }
}
