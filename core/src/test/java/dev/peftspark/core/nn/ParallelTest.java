package dev.peftspark.core.nn;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.nd4j.linalg.factory.Nd4j;

import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicIntegerArray;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ParallelTest {
  static {
    Nd4jSetup.ensure();
  }

  private static void withBlasThreads(int n, Runnable r) {
    int before = Nd4j.factory().blas().getMaxThreads();
    Nd4j.factory().blas().setMaxThreads(n);
    try {
      r.run();
    } finally {
      Nd4j.factory().blas().setMaxThreads(before);
    }
  }

  @Test
  void everyIndexRunsOnceOnSeveralThreads() {
    withBlasThreads(2, () -> {
      assertEquals(2, Parallel.threads());
      AtomicIntegerArray runs = new AtomicIntegerArray(1000);
      Set<String> threads = ConcurrentHashMap.newKeySet();
      CountDownLatch both = new CountDownLatch(2);   // each thread's first index waits for the other's
      Parallel.forEach(1000, i -> {
        runs.incrementAndGet(i);
        assertEquals(1, Parallel.threads(), "nested regions run inline");
        if (threads.add(Thread.currentThread().getName())) {
          both.countDown();
          awaitQuietly(both);
        }
      });
      for (int i = 0; i < 1000; i++) assertEquals(1, runs.get(i), "index " + i);
      assertEquals(2, threads.size(), "both threads took indices: " + threads);
      assertEquals(2, Nd4j.factory().blas().getMaxThreads(), "restored after the region");
    });
  }

  @Test
  void pinnedPartsRunAtOnceEachOnTheSameThreadEveryTime() {
    withBlasThreads(2, () -> {
      String[][] seen = new String[3][3];
      for (int call = 0; call < 3; call++) {
        int c = call;
        CountDownLatch all = new CountDownLatch(3);   // every part waits for the others: they run at once
        Parallel.forEachPinned(3, k -> {
          seen[c][k] = Thread.currentThread().getName();
          assertEquals(1, Parallel.threads(), "inside a part everything is single-threaded");
          Parallel.forEach(10, i -> assertEquals(seen[c][k], Thread.currentThread().getName(), "nested regions run inline"));
          all.countDown();
          awaitQuietly(all);
          assertEquals(0, all.getCount(), "part " + k + " ran alone");
        });
      }
      for (int k = 0; k < 3; k++) {
        assertEquals(seen[0][k], seen[1][k], "part " + k + " moved thread");
        assertEquals(seen[0][k], seen[2][k], "part " + k + " moved thread");
      }
      assertEquals(Thread.currentThread().getName(), seen[0][0], "part 0 runs on the caller");
      assertEquals(3, Set.of(seen[0]).size(), "three threads");
      var e = assertThrows(IllegalStateException.class, () -> Parallel.forEachPinned(2, k -> {
        if (k == 1) throw new IllegalStateException("part 1 failed");
      }));
      assertEquals("part 1 failed", e.getMessage());
      assertEquals(2, Nd4j.factory().blas().getMaxThreads(), "restored after the region");
    });
  }

  @Test
  void aFailingTaskFailsTheRegionAndRestoresOpenBlas() {
    withBlasThreads(2, () -> {
      var e = assertThrows(IllegalStateException.class, () -> Parallel.forEach(50, i -> {
        if (i == 37) throw new IllegalStateException("task 37 failed");
      }));
      assertEquals("task 37 failed", e.getMessage());
      assertEquals(2, Nd4j.factory().blas().getMaxThreads());
    });
  }

  @Test
  @Timeout(60)   // a lost hand-over would hang the region: fail instead
  void backToBackRegionsAndRegionsAfterAPauseHandEveryTaskOver() throws Exception {
    // helpers spin between close regions and park after a pause: both hand-overs must run every index once
    withBlasThreads(2, () -> {
      AtomicIntegerArray runs = new AtomicIntegerArray(4);
      Set<String> threads = ConcurrentHashMap.newKeySet();
      for (int region = 0; region < 400; region++) {
        if (region % 20 == 0) sleepQuietly(2);   // longer than the spin: the helper has parked
        Parallel.forEach(4, i -> {
          runs.incrementAndGet(i);
          threads.add(Thread.currentThread().getName());
        });
      }
      for (int i = 0; i < 4; i++) assertEquals(400, runs.get(i), "index " + i);
      assertEquals(2, threads.size(), "the helper took indices: " + threads);
      assertThrows(IllegalStateException.class, () -> Parallel.forEach(4, i -> { throw new IllegalStateException("x"); }));
      Parallel.forEach(4, runs::incrementAndGet);   // a failed task leaves its helper usable
      for (int i = 0; i < 4; i++) assertEquals(401, runs.get(i), "index " + i);
    });
  }

  @Test
  void oneBlasThreadRunsInlineInOrder() {
    withBlasThreads(1, () -> {
      StringBuilder order = new StringBuilder();
      Parallel.forEach(5, order::append);
      assertEquals("01234", order.toString());
    });
  }

  private static void sleepQuietly(long ms) {
    try {
      Thread.sleep(ms);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static void awaitQuietly(CountDownLatch latch) {
    try {
      latch.await(30, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
