package dev.peftspark.core.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputDirTest {
  @TempDir Path tmp;

  private List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void writesAFileUnderItsNameAndLeavesNoTemporary() throws IOException {
    Path target = tmp.resolve("out/metrics.json");
    OutputDir.writeAtomically(target, p -> Files.writeString(p, "{}"));
    assertEquals("{}", Files.readString(target));
    assertEquals(List.of("metrics.json"), names(tmp.resolve("out")));
  }

  @Test
  void aFailureMidWriteLeavesNothingBehind() throws IOException {
    IOException boom = new IOException("disk full");
    Path target = tmp.resolve("adapter_model.safetensors");
    IOException thrown = assertThrows(IOException.class, () -> OutputDir.writeAtomically(target, p -> {
      try (OutputStream out = Files.newOutputStream(p)) {
        out.write(new byte[4096]); // half an adapter
        throw boom;
      }
    }));
    assertSame(boom, thrown);
    assertEquals(List.of(), names(tmp));
  }

  @Test
  void aFailureKeepsThePreviousVersionIntact() throws IOException {
    Path target = tmp.resolve("eval.json");
    Files.writeString(target, "old");
    assertThrows(IllegalStateException.class, () -> OutputDir.writeAtomically(target, p -> {
      Files.writeString(p, "new but partial");
      throw new IllegalStateException("bug");
    }));
    assertEquals("old", Files.readString(target));
    assertEquals(List.of("eval.json"), names(tmp));
  }

  @Test
  void aWriterThatWritesNothingIsAnError() {
    IOException e = assertThrows(IOException.class, () -> OutputDir.writeAtomically(tmp.resolve("x"), p -> {}));
    assertTrue(e.getMessage().contains("nothing was written"), e.getMessage());
  }

  @Test
  void writesADirectoryAndReplacesAnExistingOne() throws IOException {
    Path adapter = tmp.resolve("adapter");
    Files.createDirectories(adapter);
    Files.writeString(adapter.resolve("stale.bin"), "x");
    OutputDir.writeAtomically(adapter, p -> {
      Files.createDirectory(p);
      Files.writeString(p.resolve("adapter_config.json"), "{}");
    });
    assertEquals(List.of("adapter_config.json"), names(adapter));
    assertEquals(List.of("adapter"), names(tmp));
  }

  @Test
  void aFailedStagedRunLeavesNoOutputDirectory() throws IOException {
    Path out = tmp.resolve("runs/demo");
    Path stage = OutputDir.staging(out);
    assertTrue(Files.isDirectory(stage));
    assertEquals(out.toAbsolutePath().getParent(), stage.getParent());
    Files.writeString(stage.resolve("adapter_model.safetensors"), "partial");
    OutputDir.abort(stage);
    assertFalse(Files.exists(out));
    assertEquals(List.of(), names(tmp.resolve("runs")));
  }

  @Test
  void commitReplacesAPreviousRun() throws IOException {
    Path out = tmp.resolve("run");
    Files.createDirectories(out);
    Files.writeString(out.resolve("old.txt"), "old");
    Path stage = OutputDir.staging(out);
    Files.writeString(stage.resolve("adapter_config.json"), "{}");
    OutputDir.commit(stage, out);
    assertEquals(List.of("adapter_config.json"), names(out));
    assertEquals(List.of("run"), names(tmp));
  }

  @Test
  void commitIntoANewDirectory() throws IOException {
    Path out = tmp.resolve("fresh");
    Path stage = OutputDir.staging(out);
    Files.writeString(stage.resolve("a"), "1");
    OutputDir.commit(stage, out);
    assertEquals("1", Files.readString(out.resolve("a")));
    assertEquals(List.of("fresh"), names(tmp));
  }
}
