package dev.peftspark.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ResourceCacheTest {
  private static final String RESOURCE = MiniLm.TOKENIZER_RESOURCE;
  @TempDir Path dir;

  @Test
  void extractsOnceAndRedoesATruncatedOrCorruptedCopy() throws IOException {
    byte[] original;
    try (InputStream in = getClass().getClassLoader().getResourceAsStream(RESOURCE)) {
      original = in.readAllBytes();
    }
    Path target = dir.resolve("nested/tokenizer.json");
    assertEquals(target, ResourceCache.extract(RESOURCE, target));
    assertArrayEquals(original, Files.readAllBytes(target));

    FileTime firstWrite = Files.getLastModifiedTime(target);
    ResourceCache.extract(RESOURCE, target);
    assertEquals(firstWrite, Files.getLastModifiedTime(target), "a good copy must not be rewritten");

    Files.write(target, Arrays.copyOf(original, original.length / 2));
    ResourceCache.extract(RESOURCE, target);
    assertArrayEquals(original, Files.readAllBytes(target));

    byte[] corrupted = original.clone();
    corrupted[1000] ^= 1; // same size, different content
    Files.write(target, corrupted);
    Files.setLastModifiedTime(target, FileTime.fromMillis(1_000_000L));
    ResourceCache.extract(RESOURCE, target);
    assertArrayEquals(original, Files.readAllBytes(target));

    try (var listing = Files.list(target.getParent())) {
      assertEquals(1, listing.count(), "temporary files left behind");
    }
  }

  @Test
  void missingResourceIsNamed() {
    IOException e = assertThrows(IOException.class,
        () -> ResourceCache.extract("no-such-model.onnx", dir.resolve("x")));
    assertTrue(e.getMessage().contains("'no-such-model.onnx' not found"), e.getMessage());
  }
}
