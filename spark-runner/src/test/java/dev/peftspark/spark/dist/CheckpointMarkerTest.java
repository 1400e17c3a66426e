package dev.peftspark.spark.dist;

import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which {@code step-N} directories count as checkpoints: only those whose {@code _COMPLETE} marker is there and
 * whose state reads back whole, so an interrupted copy (S3 renames copy file by file) or delete is never resumed
 * from. S3aStorageTest runs the same against S3; this pins the rules on the local FileSystem without Spark.
 */
class CheckpointMarkerTest {
  @TempDir Path out;

  static Checkpoints.State state(int step) {
    LinkedHashMap<String, float[]> moments = new LinkedHashMap<>();
    moments.put("m", new float[] {step, -step});
    LinkedHashMap<String, Long> counters = new LinkedHashMap<>();
    counters.put("t", (long) step);
    return new Checkpoints.State(step, 42, 3, new float[] {step, step + 0.5f, -step},
        new OptState(moments, counters), List.of());
  }

  Path step(int n) {
    return out.resolve(Checkpoints.DIR).resolve("step-" + n);
  }

  Optional<Integer> newest(Checkpoints cp) throws Exception {
    return cp.newest().map(Checkpoints.State::step);
  }

  @Test
  void onlyMarkedCheckpointsThatReadBackCount() throws Exception {
    Checkpoints cp = new Checkpoints(out.toString(), new Configuration());
    for (int s : new int[] {2, 4, 6}) cp.write(state(s));
    assertFalse(Files.exists(step(2)), "the newest two are kept");
    assertTrue(Files.isRegularFile(step(6).resolve(Checkpoints.COMPLETE)));
    Checkpoints.State back = cp.newest().orElseThrow();
    assertEquals(6, back.step());
    assertArrayEquals(state(6).values(), back.values());
    assertArrayEquals(state(6).optimizer().vectors().get("m"), back.optimizer().vectors().get("m"));

    // Copied but never marked (a crash between the rename and the marker): not a checkpoint.
    Files.delete(step(6).resolve(Checkpoints.COMPLETE));
    assertEquals(Optional.of(4), newest(cp));

    // Marked, but its state never arrived (a rename that copied the marker first, then stopped): skipped too.
    Files.delete(step(4).resolve("state.bin"));
    assertEquals(Optional.empty(), newest(cp));

    // Writing a step again replaces the unmarked leftover with a complete one.
    cp.write(state(6));
    assertEquals(Optional.of(6), newest(cp));
  }
}
