package dev.peftspark.spark.job;

import dev.peftspark.core.train.OutputDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The run-output and model-cache helpers both jobs share (remote publishing itself: HdfsTest, S3aStorageTest). */
class HadoopPathsTest {
  @TempDir Path tmp;

  @Test
  void publishRunReplacesTheOutputAndKeepsTheFittersCheckpoints() throws Exception {
    Path out = HadoopPaths.runOutputDir(tmp.resolve("out").toString());
    assertEquals(tmp.resolve("out"), out);
    Files.createDirectories(out.resolve(ClassificationJob.CHECKPOINTS).resolve("step-5"));
    Files.writeString(out.resolve("stale.json"), "{}");   // from an earlier run: replaced
    Path staging = OutputDir.staging(out);
    Files.writeString(staging.resolve("adapter_config.json"), "{\"new\": true}");

    HadoopPaths.publishRun(staging, out, out.toString());

    assertFalse(Files.exists(staging));
    assertFalse(Files.exists(out.resolve("stale.json")));
    assertEquals("{\"new\": true}", Files.readString(out.resolve("adapter_config.json")));
    assertTrue(Files.isDirectory(out.resolve(ClassificationJob.CHECKPOINTS).resolve("step-5")));
    try (Stream<Path> left = Files.list(tmp)) {
      assertEquals(1, left.count(), "no staging or old folder left beside the output");
    }
  }

  @Test
  void aRemoteOutputIsAssembledInAFreshLocalFolder() throws Exception {
    Path a = HadoopPaths.runOutputDir("hdfs://namenode:8020/runs/x");
    Path b = HadoopPaths.runOutputDir("hdfs://namenode:8020/runs/x");
    assertNotEquals(a, b);
    assertFalse(Files.exists(a));
    assertTrue(Files.isDirectory(a.getParent()));
    Files.delete(a.getParent());
    Files.delete(b.getParent());
  }

  @Test
  void cachedModelDirCopiesOnceUnderTheCacheRootAndAgainWhenTheModelChanges() throws Exception {
    Path model = Files.createDirectories(tmp.resolve("model"));
    Files.writeString(model.resolve("config.json"), "{\"a\": 1}");
    String before = System.getProperty("peft.spark.cache");
    System.setProperty("peft.spark.cache", tmp.resolve("cache").toString());
    try {
      String uri = model.toUri().toString();
      Path copy = HadoopPaths.cachedModelDir(uri);
      assertEquals(tmp.resolve("cache").resolve("models"), copy.getParent());
      assertEquals("{\"a\": 1}", Files.readString(copy.resolve("config.json")));
      assertEquals(copy, HadoopPaths.cachedModelDir(uri));

      Files.writeString(model.resolve("config.json"), "{\"a\": 12}");
      Path changed = HadoopPaths.cachedModelDir(uri);
      assertNotEquals(copy, changed);
      assertEquals("{\"a\": 12}", Files.readString(changed.resolve("config.json")));
    } finally {
      if (before == null) System.clearProperty("peft.spark.cache");
      else System.setProperty("peft.spark.cache", before);
    }
  }
}
