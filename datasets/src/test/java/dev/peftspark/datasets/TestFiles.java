package dev.peftspark.datasets;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Shared fixtures: the MiniLM tokenizer file and the offline demo data cache. */
public final class TestFiles {
  static final Path SHARED_DATA_CACHE = Path.of("/work/shared/data-cache");

  private static Path tokenizer;
  private static boolean cacheConfigured;

  private TestFiles() {}

  /** all-minilm-l6-v2-tokenizer.json copied out of the langchain4j jar (bert-base-uncased vocabulary). */
  static synchronized Path miniLmTokenizer() {
    if (tokenizer == null) {
      try (InputStream in = TestFiles.class.getResourceAsStream("/all-minilm-l6-v2-tokenizer.json")) {
        if (in == null) {
          throw new IllegalStateException("all-minilm-l6-v2-tokenizer.json is not on the test classpath");
        }
        Path file = Files.createTempFile("minilm-tokenizer", ".json");
        file.toFile().deleteOnExit();
        Files.copy(in, file, StandardCopyOption.REPLACE_EXISTING);
        tokenizer = file;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return tokenizer;
  }

  /**
   * Points DemoData at the pre-fetched tarballs (unless CI set PEFT_SPARK_DATA_CACHE) and at a per-run cache
   * folder (unless PEFT_SPARK_CACHE is set), so tests need no network and leave ~/.cache alone.
   */
  public static synchronized void useOfflineDemoCache() {
    if (cacheConfigured) {
      return;
    }
    if (System.getProperty("peft.spark.data.cache") == null && System.getenv("PEFT_SPARK_DATA_CACHE") == null) {
      System.setProperty("peft.spark.data.cache", SHARED_DATA_CACHE.toString());
    }
    if (System.getProperty("peft.spark.cache") == null && System.getenv("PEFT_SPARK_CACHE") == null) {
      try {
        Path dir = Files.createTempDirectory("peft-spark-test-cache");
        System.setProperty("peft.spark.cache", dir.toString());
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(dir)));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    cacheConfigured = true;
  }

  static void deleteTree(Path dir) {
    try (var files = Files.walk(dir)) {
      files.sorted(java.util.Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException ignored) {
      // best effort: a temp folder
    }
  }
}
