package dev.peftspark.core.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ConsoleProgressTest {
  private static StepMetrics step(int i, long elapsedMs) {
    return new StepMetrics(i, 1, 0.3124, 4.1e-4, 1.0, 88.24, 3000, elapsedMs, 32, 1000);
  }

  @Test
  void lineShowsBarStepsLossLrThroughputAndEta() {
    assertEquals("[######--------------] 120/400 loss 0.312 lr 4.1e-4 88.2 ex/s eta 1:02",
        ConsoleProgress.line(step(120, 26_572), 400));
    assertEquals("step 5 loss 0.312 lr 4.1e-4 88.2 ex/s", ConsoleProgress.line(step(5, 1000), -1));
  }

  @Test
  void formats() {
    assertEquals("4.1e-4", ConsoleProgress.scientific(4.1e-4));
    assertEquals("1.0e-3", ConsoleProgress.scientific(1e-3));
    assertEquals("2.5e3", ConsoleProgress.scientific(2500));
    assertEquals("1:02:03", ConsoleProgress.duration(3_723_000));
    assertEquals("0:59", ConsoleProgress.duration(59_999));
  }

  private static String run(boolean tty, int logEvery, int steps) {
    var buf = new ByteArrayOutputStream();
    PrintStream realOut = System.out;
    var stdout = new ByteArrayOutputStream();
    System.setOut(new PrintStream(stdout));
    try {
      var p = new ConsoleProgress(new PrintStream(buf, true, StandardCharsets.UTF_8), tty, logEvery);
      p.onStart(steps, 10, 1000);
      for (int i = 1; i <= steps; i++) p.onStep(step(i, i * 100L));
      p.onEnd(RunFilesTest.summary(null));
    } finally {
      System.setOut(realOut);
    }
    assertEquals(0, stdout.size(), "nothing on stdout");
    return buf.toString(StandardCharsets.UTF_8);
  }

  @Test
  void plainLinesEveryLogEveryStepsWhenNotATerminal() {
    String out = run(false, 4, 10);
    String[] lines = out.split("\n");
    assertEquals("training 10 steps, 10 of 1,000 parameters trainable (1.00%)", lines[0]);
    assertEquals(4, lines.length, out); // header, step 4, step 8, step 10 (the last)
    assertTrue(lines[1].contains(" 4/10 "));
    assertTrue(lines[2].contains(" 8/10 "));
    assertTrue(lines[3].startsWith("[####################] 10/10 "));
    assertFalse(out.contains("\r"));
  }

  @Test
  void redrawnInPlaceOnATerminal() {
    String out = run(true, 4, 10);
    assertEquals(10, out.chars().filter(c -> c == '\r').count());
    assertTrue(out.endsWith("eta 0:00\n"), out);
  }
}
