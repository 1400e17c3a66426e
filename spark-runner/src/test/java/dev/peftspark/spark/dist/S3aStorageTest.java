package dev.peftspark.spark.dist;

import com.amazonaws.auth.AWSStaticCredentialsProvider;
import com.amazonaws.auth.BasicAWSCredentials;
import com.amazonaws.client.builder.AwsClientBuilder;
import com.amazonaws.services.s3.AmazonS3ClientBuilder;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.train.RunOutputs;
import dev.peftspark.core.train.StepMetrics;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.spark.job.ClassificationJob;
import dev.peftspark.spark.job.HadoopPaths;
import org.apache.hadoop.fs.FileSystem;
import org.apache.spark.SparkContext$;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Data, base model, checkpoints and output on s3a:// against a local S3 server (s3proxy over jclouds' in-memory
 * blob store, in its own JVM), configured only through {@code spark.hadoop.*} keys as spark-submit's --conf sets
 * them.
 */
class S3aStorageTest {
  static final String BUCKET = "peft";
  static final String ACCESS = "test-access", SECRET = "test-secret";
  static Process s3;
  static FileSystem testFs;   // the test's own view of the bucket
  static Path s3Log;
  static Map<String, String> sparkHadoop = Map.of();
  @TempDir static Path s3Dir;
  @TempDir Path tmp;

  /** s3proxy's jar with its dependencies (copied by the pom), started as its own JVM on a free port. */
  @BeforeAll
  static void startS3() throws Exception {
    Path jar = Path.of("target/s3proxy/s3proxy.jar");
    assertTrue(Files.isRegularFile(jar), jar.toAbsolutePath() + " (the pom's s3proxy-for-tests copy)");
    int port;
    try (ServerSocket free = new ServerSocket(0)) {
      port = free.getLocalPort();
    }
    String endpoint = "http://127.0.0.1:" + port;
    Path props = s3Dir.resolve("s3proxy.conf");
    Files.writeString(props, String.join("\n", "s3proxy.endpoint=" + endpoint,
        "s3proxy.authorization=aws-v2-or-v4", "s3proxy.identity=" + ACCESS, "s3proxy.credential=" + SECRET,
        "jclouds.provider=transient", "jclouds.identity=unused", "jclouds.credential=unused", ""));
    s3Log = Path.of("target/s3proxy/s3proxy.log");   // kept for a failed run
    s3 = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Xmx1g",   // the in-memory store holds the 90 MB base model
        "-jar", jar.toString(), "--properties", props.toString())
        .redirectErrorStream(true).redirectOutput(s3Log.toFile()).start();
    waitForPort(port);

    sparkHadoop = Map.ofEntries(
        Map.entry("fs.s3a.endpoint", endpoint),
        Map.entry("fs.s3a.endpoint.region", "us-east-1"),
        Map.entry("fs.s3a.path.style.access", "true"),
        Map.entry("fs.s3a.connection.ssl.enabled", "false"),
        Map.entry("fs.s3a.aws.credentials.provider", "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"),
        Map.entry("fs.s3a.access.key", ACCESS),
        Map.entry("fs.s3a.secret.key", SECRET),
        Map.entry("fs.s3a.change.detection.version.required", "false"),   // s3proxy keeps no object versions
        Map.entry("fs.s3a.attempts.maximum", "2"),
        Map.entry("fs.s3a.retry.limit", "2"),
        // a fresh FileSystem per access: every read and write must carry these keys itself, not find a cached one
        Map.entry("fs.s3a.impl.disable.cache", "true"));
    AmazonS3ClientBuilder.standard().withPathStyleAccessEnabled(true)
        .withEndpointConfiguration(new AwsClientBuilder.EndpointConfiguration(endpoint, "us-east-1"))
        .withCredentials(new AWSStaticCredentialsProvider(new BasicAWSCredentials(ACCESS, SECRET)))
        .build().createBucket(BUCKET);
    // What `spark-submit --conf spark.hadoop.K=V` does: a system property the driver's SparkConf picks up.
    stopActiveSpark();
    sparkHadoop.forEach((k, v) -> System.setProperty("spark.hadoop." + k, v));
    TestSpark.context();
  }

  static void waitForPort(int port) throws Exception {
    long deadline = System.nanoTime() + 60_000_000_000L;
    while (System.nanoTime() < deadline) {
      assertTrue(s3.isAlive(), () -> "s3proxy exited: " + log());
      try (Socket probe = new Socket("127.0.0.1", port)) {
        return;
      } catch (IOException notYet) {
        Thread.sleep(100);
      }
    }
    throw new AssertionError("s3proxy did not listen on " + port + " within 60 s: " + log());
  }

  static String log() {
    try {
      return Files.readString(s3Log);
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  @AfterAll
  static void stopS3() throws Exception {
    sparkHadoop.keySet().forEach(k -> System.clearProperty("spark.hadoop." + k));
    stopActiveSpark();   // the next test class gets a context without the keys
    if (testFs != null) testFs.close();
    FileSystem.closeAll();
    if (s3 != null) {
      s3.destroy();
      s3.waitFor();
    }
  }

  static void stopActiveSpark() {
    var active = SparkContext$.MODULE$.getActive();
    if (active.isDefined()) active.get().stop();
  }

  static FileSystem fs() throws Exception {
    if (testFs == null) testFs = FileSystem.newInstance(URI.create("s3a://" + BUCKET + "/"), HadoopPaths.conf());
    return testFs;
  }

  static String put(Path local, String name) throws Exception {
    org.apache.hadoop.fs.Path p = new org.apache.hadoop.fs.Path("s3a://" + BUCKET + "/inputs/" + name);
    fs().copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(local.toUri()), p);
    return p.toString();
  }

  static boolean exists(String dir, String file) throws Exception {
    return fs().exists(new org.apache.hadoop.fs.Path(dir, file));
  }

  static final class Crash extends RuntimeException {
    Crash() { super("simulated driver crash at step 5"); }
  }

  @Test
  void trainsOnS3AndResumesFromTheNewestCompleteCheckpoint() throws Exception {
    Path train = TestSpark.slice("demo:sentiment/amazon.json", 96, tmp);
    Path test = TestSpark.slice("demo:sentiment/yelp.json", 16, tmp);
    String model = put(HdfsTest.miniLmDirectory(tmp.resolve("minilm-hf")), "minilm-hf");
    String trainUri = put(train, "train.jsonl"), testUri = put(test, "test.jsonl");
    String out = "s3a://" + BUCKET + "/runs/out";
    var sc = TestSpark.context();
    String[] sets = {"train.batch_size=16", "train.max_steps=6", "checkpoint.every_steps=2"};
    String[] s3Sets = {"train.batch_size=16", "train.max_steps=6", "checkpoint.every_steps=2", "model=" + model};

    // The uninterrupted run: local files, the built-in model (HdfsTest shows the copied directory is the same).
    Path straight = tmp.resolve("straight");
    ClassificationJob.train(TestSpark.config(train, test, straight, "spark", sets), new TrainListener() {},
        new SparkFitter(sc));

    TrainListener crashAt5 = new TrainListener() {
      @Override public void onStep(StepMetrics m) { if (m.step() == 5) throw new Crash(); }
    };
    assertThrows(Crash.class, () -> ClassificationJob.train(TestSpark.config(trainUri, testUri, out, "spark",
        s3Sets), crashAt5, new SparkFitter(sc)));
    String checkpoints = out + "/" + Checkpoints.DIR;
    for (String step : new String[] {"step-2", "step-4"}) {
      assertTrue(exists(checkpoints, step + "/state.bin"), step + " on S3");
      assertTrue(exists(checkpoints, step + "/" + Checkpoints.COMPLETE), step + " marked complete");
    }
    assertFalse(exists(out, AdapterFiles.WEIGHTS), "no adapter from the crashed run");

    // A newer step-6 whose copy never finished (S3 renames copy file by file; the crash came before the
    // marker): it reads back, but is another run's state, so trusting it would fail the resume below.
    var cp = new Checkpoints(out, HadoopPaths.conf());
    Checkpoints.State at4 = cp.newest().orElseThrow();
    assertEquals(4, at4.step());
    cp.write(new Checkpoints.State(6, at4.seed() + 1, at4.size(), at4.values(), at4.optimizer(), at4.history()));
    fs().delete(new org.apache.hadoop.fs.Path(checkpoints, "step-6/" + Checkpoints.COMPLETE), false);
    assertTrue(exists(checkpoints, "step-6/state.bin"));
    assertEquals(Optional.of(4), cp.newest().map(Checkpoints.State::step), "unmarked step-6 is not trusted");

    TrainSummary s = ClassificationJob.train(TestSpark.config(trainUri, testUri, out, "spark", s3Sets),
        new TrainListener() {}, new SparkFitter(sc));
    assertEquals(4, s.distributed().resumedFromStep());
    assertEquals(6, s.steps());
    for (String f : new String[] {AdapterFiles.WEIGHTS, AdapterFiles.CONFIG, RunOutputs.METRICS,
        Checkpoints.DIR + "/step-6/state.bin", Checkpoints.DIR + "/step-6/" + Checkpoints.COMPLETE}) {
      assertTrue(exists(out, f), f + " on S3");
    }
    Path fetched = tmp.resolve("fetched");
    Files.createDirectories(fetched);
    fs().copyToLocalFile(new org.apache.hadoop.fs.Path(out, AdapterFiles.WEIGHTS),
        new org.apache.hadoop.fs.Path(fetched.resolve(AdapterFiles.WEIGHTS).toUri()));
    assertEquals(0.0, TestSpark.maxDiff(TestSpark.adapter(straight), TestSpark.adapter(fetched)),
        "adapter resumed on S3 must equal the uninterrupted local run's bit for bit");

    ObjectMapper json = new ObjectMapper();
    try (var in = new BufferedReader(new InputStreamReader(
        fs().open(new org.apache.hadoop.fs.Path(out, RunOutputs.METRICS)), StandardCharsets.UTF_8))) {
      var lines = in.lines().toList();
      assertEquals(6, lines.size(), "every step once in metrics.jsonl");
      for (int i = 0; i < lines.size(); i++) assertEquals(i + 1, json.readTree(lines.get(i)).get("step").asInt());
    }
  }
}
