package dev.peftspark.spark.dist;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How a step's payload reaches the tasks, and how a job's time is split. */
class StepPayloadTest {

  /** The sum the tasks see, read from the payload inside two tasks. */
  private static List<Long> sumsInTasks(StepPayload<float[]> p) {
    return TestSpark.context().parallelize(List.of(0, 1), 2).map(i -> {
      double s = 0;
      for (float f : p.value()) s += f;
      return (long) s;
    }).collect();
  }

  @Test
  void smallPayloadsRideInTheClosureLargeOnesInABroadcastDestroyedAfterTheStep() {
    var sc = TestSpark.context();
    float[] small = new float[1000];
    java.util.Arrays.fill(small, 1f);
    try (var p = StepPayload.of(sc, small, 4L * small.length)) {
      assertFalse(p.broadcast());
      assertEquals(List.of(1000L, 1000L), sumsInTasks(p));
      assertEquals(0, p.driverMs());
    }
    float[] large = new float[(int) (StepPayload.INLINE_LIMIT / 4) + 1];
    java.util.Arrays.fill(large, 1f);
    var p = StepPayload.of(sc, large, 4L * large.length);
    assertTrue(p.broadcast());
    assertEquals(List.of((long) large.length, (long) large.length), sumsInTasks(p));
    p.close();
    var e = assertThrows(Exception.class, () -> sumsInTasks(p), "a destroyed broadcast cannot be read again");
    String why = "";
    for (Throwable t = e; t != null; t = t.getCause()) why += t.getMessage() + "\n";
    assertTrue(why.contains("after it was destroyed"), why);
  }

  @Test
  void jobTimingTakesTheSlowestTaskForEachPart() {
    var tasks = List.of(new TaskTiming(1_000, 3, 500, 1_510), new TaskTiming(1_040, 7, 450, 1_500));
    TaskTiming.Job job = TaskTiming.job(tasks, 990, 1_530);
    assertEquals(50, job.launchMs());     // the second task started 50 ms after submission
    assertEquals(7, job.readMs());
    assertEquals(500, job.computeMs());
    assertEquals(20, job.resultMs());     // the last task ended at 1,510; results in at 1,530
    // an executor clock slightly ahead of the driver's does not give negative parts
    TaskTiming.Job skewed = TaskTiming.job(List.of(new TaskTiming(980, 0, 10, 2_000)), 990, 1_990);
    assertEquals(0, skewed.launchMs());
    assertEquals(0, skewed.resultMs());
  }
}
