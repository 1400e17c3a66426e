package dev.peftspark.spark.dist;

import dev.peftspark.core.peft.AdapterFiles;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real standalone cluster on this machine: a Master and two Workers (1 core each) started from the Spark jars,
 * executors in their own JVMs, jobs submitted with SparkSubmit and the fat jar. An executor killed mid-training
 * costs a retry, not a different adapter; a killed driver resumes from its checkpoint.
 */
class StandaloneClusterIT {
  @TempDir static Path home;
  static final List<Process> daemons = new ArrayList<>();
  static String master;
  static Path train, test;

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  static List<String> java(String mainClass, String... args) {
    List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "@" + Path.of("..", "conf", "jvm.options").toAbsolutePath().normalize(), "-Xmx512m",
        "-Dspark.testing=true", "-Dspark.test.home=" + home, "-cp", SparkSubmitIT.sparkInstallClasspath(), mainClass));
    cmd.addAll(List.of(args));
    return cmd;
  }

  static Process start(List<String> cmd, Path log) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
    Map<String, String> env = pb.environment();
    env.put("SPARK_TESTING", "1");
    env.put("SPARK_SCALA_VERSION", "2.12");
    env.put("SPARK_HOME", home.toString());
    env.put("SPARK_LOCAL_IP", "127.0.0.1");
    env.put("PEFT_SPARK_CACHE", home.resolve("cache").toString());
    return pb.start();
  }

  static void await(String what, long seconds, BooleanSupplier ok) throws InterruptedException {
    long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (!ok.getAsBoolean()) {
      if (System.nanoTime() > end) throw new AssertionError("timed out waiting for " + what);
      Thread.sleep(100);
    }
  }

  static boolean logHas(Path log, String text) {
    try {
      return Files.exists(log) && Files.readString(log).contains(text);
    } catch (IOException e) {
      return false;
    }
  }

  @BeforeAll
  static void startCluster() throws Exception {
    TestSpark.offlineDemoData();
    train = TestSpark.slice("demo:sentiment/amazon.json", 192, home);
    test = TestSpark.slice("demo:sentiment/yelp.json", 16, home);
    int port = freePort();
    master = "spark://127.0.0.1:" + port;
    Path masterLog = home.resolve("master.log");
    daemons.add(start(java("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
        String.valueOf(port), "--webui-port", String.valueOf(freePort())), masterLog));
    await("the master", 90, () -> logHas(masterLog, "I have been elected leader"));
    for (int w = 0; w < 2; w++) {
      Path log = home.resolve("worker" + w + ".log");
      Path work = Files.createDirectories(home.resolve("work" + w));
      daemons.add(start(java("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
          "--memory", "3g", "--work-dir", work.toString(), "--webui-port", String.valueOf(freePort()), master), log));
      await("worker " + w, 90, () -> logHas(log, "Successfully registered with master"));
    }
  }

  @AfterAll
  static void stopCluster() {
    for (Process p : daemons) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
  }

  static final String DRIVER_SETTING = "peft.parallel.spin.us=300";

  /** SparkSubmit in client mode: this machine's JVM is the driver, the workers' executors do the steps. */
  static Process submit(Path out, Path log, String... sets) throws IOException {
    Path cfg = out.resolveSibling(out.getFileName() + ".yaml");
    Files.writeString(cfg, String.join("\n", "runner: spark", "output_dir: " + out,
        "data: {train: [" + train + "], test: [" + test + "], max_length: 64}",
        "lora: {r: 8, alpha: 16, target_modules: [query, value]}", "train: {batch_size: 16, max_steps: 12, lr: 1e-3}",
        "spark: {partitions: 2}", "checkpoint: {every_steps: 2}", ""));
    String opens = String.join(" ", Files.readAllLines(Path.of("..", "conf", "jvm.options")));
    List<String> cmd = java("org.apache.spark.deploy.SparkSubmit", "--master", master, "--deploy-mode", "client",
        "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--conf", "spark.ui.enabled=false", "--conf", "spark.executor.memory=1g", "--conf", "spark.executor.cores=1",
        "--conf", "spark.executor.extraJavaOptions=" + opens
            + " -Dorg.bytedeco.javacpp.maxbytes=2G -Dorg.bytedeco.javacpp.maxphysicalbytes=3G",
        "--conf", "spark.executorEnv.PEFT_SPARK_CACHE=" + home.resolve("cache"),
        "--class", "dev.peftspark.spark.cli.Main", SparkSubmitIT.fatJar().toString(), "train", "--config",
        cfg.toString());
    List<String> all = new ArrayList<>(cmd);
    all.add(1, "-D" + DRIVER_SETTING);   // a driver -Dpeft.* setting (the default's value): it must reach the executors
    for (String s : sets) all.addAll(List.of("--set", s));
    return start(all, log);
  }

  static void finish(Process p, Path log) throws Exception {
    boolean done = p.waitFor(6, TimeUnit.MINUTES);
    if (!done) p.destroyForcibly();
    String text = Files.readString(log);
    String tail = text.substring(Math.max(0, text.length() - 5000));
    assertTrue(done, "timed out:\n" + tail);
    assertEquals(0, p.exitValue(), tail);
  }

  static List<ProcessHandle> executors() {
    List<ProcessHandle> out = new ArrayList<>();
    for (Process w : daemons) {
      w.descendants().filter(h -> commandLine(h).contains("CoarseGrainedExecutorBackend")).forEach(out::add);
    }
    return out;
  }

  /** /proc/PID/cmdline: ProcessHandle.Info drops long command lines (the executors' classpath is long). */
  static String commandLine(ProcessHandle h) {
    try {
      return new String(Files.readAllBytes(Path.of("/proc", String.valueOf(h.pid()), "cmdline"))).replace('\0', ' ');
    } catch (IOException e) {
      return h.info().commandLine().orElse("");
    }
  }

  @Test
  void executorAndDriverFailuresDoNotChangeTheAdapter() throws Exception {
    Path clean = home.resolve("clean");
    finish(submit(clean, home.resolve("clean.log")), home.resolve("clean.log"));

    // Kill one executor JVM once step 4 is checkpointed: its tasks are retried on a fresh executor.
    Path killed = home.resolve("executor-killed");
    Path log = home.resolve("executor-killed.log");
    Process p = submit(killed, log);
    await("step 4", 300, () -> Files.exists(killed.resolve("checkpoints/step-4")));
    List<ProcessHandle> execs = executors();
    assertEquals(2, execs.size(), "two executor JVMs");
    for (ProcessHandle e : execs)
      assertTrue(commandLine(e).contains("-D" + DRIVER_SETTING), "the driver's -Dpeft.* setting reached the executor: " + commandLine(e));
    assertTrue(execs.get(0).destroyForcibly());
    finish(p, log);
    assertTrue(logHas(log, "Lost executor"), "the driver saw the executor die");
    assertEquals(0.0, TestSpark.maxDiff(TestSpark.adapter(clean), TestSpark.adapter(killed)),
        "gradient sync is exact through an executor loss");

    // Kill the driver after step 4, then rerun the same command: it resumes and ends on the same adapter.
    Path resumed = home.resolve("driver-killed");
    Path log1 = home.resolve("driver-killed-1.log");
    Process d = submit(resumed, log1);
    await("step 4", 300, () -> Files.exists(resumed.resolve("checkpoints/step-4")));
    d.descendants().forEach(ProcessHandle::destroyForcibly);
    d.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
    assertTrue(!Files.exists(resumed.resolve(AdapterFiles.WEIGHTS)), "the killed driver saved no adapter");
    Path log2 = home.resolve("driver-killed-2.log");
    finish(submit(resumed, log2), log2);
    assertTrue(logHas(log2, "resuming from"), "the rerun resumed");
    assertEquals(0.0, TestSpark.maxDiff(TestSpark.adapter(clean), TestSpark.adapter(resumed)));
  }
}
