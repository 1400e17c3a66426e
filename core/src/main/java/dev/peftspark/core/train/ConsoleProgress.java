package dev.peftspark.core.train;

import java.io.PrintStream;
import java.util.Locale;

/**
 * A progress bar on stderr: {@code [#####-----] 120/400 loss 0.312 lr 4.1e-4 88.2 ex/s eta 1:02}. On a terminal
 * it is redrawn in place with {@code \r}; otherwise (a log file, CI) it prints a plain line every
 * {@code logEvery} steps and at the last one. Never writes to stdout, which belongs to the command's result.
 */
public final class ConsoleProgress implements TrainListener {
  private static final int BAR = 20;
  private final PrintStream err;
  private final boolean tty;
  private final int logEvery;
  private int totalSteps;
  private int lastWidth;
  private boolean barShown;

  public ConsoleProgress(int logEvery) {
    this(System.err, System.console() != null, logEvery);
  }

  public ConsoleProgress(PrintStream err, boolean tty, int logEvery) {
    this.err = err;
    this.tty = tty;
    this.logEvery = Math.max(1, logEvery);
  }

  @Override
  public void onStart(int totalSteps, long trainableParams, long totalParams) {
    this.totalSteps = totalSteps;
    err.printf(Locale.ROOT, "training %s steps, %,d of %,d parameters trainable (%s)%n",
        totalSteps > 0 ? String.valueOf(totalSteps) : "?", trainableParams, totalParams,
        percent(trainableParams, totalParams));
  }

  @Override
  public void onStep(StepMetrics m) {
    String line = line(m, totalSteps);
    if (tty) {
      int pad = Math.max(0, lastWidth - line.length());
      err.print("\r" + line + " ".repeat(pad));
      err.flush();
      lastWidth = line.length();
      barShown = true;
    } else if (m.step() % logEvery == 0 || m.step() == totalSteps) {
      err.println(line);
    }
  }

  @Override
  public void onEval(EvalResult r) {
    endBar();
    err.printf(Locale.ROOT, "eval accuracy %.4f loss %.4f on %,d examples (%d skipped) in %s%n",
        r.accuracy(), r.loss(), r.examples(), r.skipped(), duration(r.elapsedMs()));
  }

  @Override
  public void onEnd(TrainSummary s) {
    endBar();
  }

  private void endBar() {
    if (barShown) err.println();
    barShown = false;
    lastWidth = 0;
  }

  /** One progress line; without a known total, no bar and no eta. */
  static String line(StepMetrics m, int totalSteps) {
    StringBuilder b = new StringBuilder();
    if (totalSteps > 0) {
      int filled = (int) Math.min(BAR, (long) m.step() * BAR / totalSteps);
      b.append('[').append("#".repeat(filled)).append("-".repeat(BAR - filled)).append("] ")
          .append(m.step()).append('/').append(totalSteps);
    } else {
      b.append("step ").append(m.step());
    }
    b.append(String.format(Locale.ROOT, " loss %.3f lr %s %.1f ex/s", m.loss(), scientific(m.lr()), m.examplesPerS()));
    if (totalSteps > 0 && m.step() > 0) {
      long eta = m.elapsedMs() * Math.max(0, totalSteps - m.step()) / m.step();
      b.append(" eta ").append(duration(eta));
    }
    return b.toString();
  }

  /** 4.1e-4 rather than Java's 4.1e-04. */
  static String scientific(double v) {
    if (v == 0) return "0";
    if (!Double.isFinite(v)) return String.valueOf(v);
    String s = String.format(Locale.ROOT, "%.1e", v);
    return s.replaceAll("e([+-])0*(\\d)", "e$1$2").replace("e+", "e");
  }

  /** m:ss, or h:mm:ss from an hour on. */
  static String duration(long ms) {
    long s = Math.max(0, ms) / 1000;
    long h = s / 3600;
    long m = s / 60 % 60;
    return h > 0 ? String.format(Locale.ROOT, "%d:%02d:%02d", h, m, s % 60)
        : String.format(Locale.ROOT, "%d:%02d", m, s % 60);
  }

  static String percent(long part, long whole) {
    return whole <= 0 ? "?%" : String.format(Locale.ROOT, "%.2f%%", 100.0 * part / whole);
  }
}
