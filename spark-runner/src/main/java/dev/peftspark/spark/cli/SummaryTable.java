package dev.peftspark.spark.cli;

import dev.peftspark.core.train.EvalResult;
import dev.peftspark.core.train.LmEvalResult;
import dev.peftspark.core.train.TrainSummary;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/** The short tables the CLI prints on stdout after train and eval. */
final class SummaryTable {
  private SummaryTable() {}

  static String train(TrainSummary s) {
    StringBuilder b = new StringBuilder();
    row(b, "method", s.method());
    row(b, "parameters", String.format(Locale.ROOT, "%,d trainable of %,d (%s)", s.trainableParams(),
        s.totalParams(), percent(s.trainableParams(), s.totalParams())));
    row(b, "steps", s.steps() + " (" + s.epochs() + (s.epochs() == 1 ? " epoch)" : " epochs)"));
    row(b, "wall time", duration(s.wallMs()));
    row(b, "examples/s", String.format(Locale.ROOT, "%.1f", s.examplesPerS()));
    row(b, "train examples", String.format(Locale.ROOT, "%,d (%,d records skipped)", s.trainExamples(),
        s.skippedRecords()));
    row(b, "final loss", String.format(Locale.ROOT, "%.4f", s.finalLoss()));
    if (s.distributed() != null) {
      var d = s.distributed();
      row(b, "spark", String.format(Locale.ROOT, "sync %s, %d partitions%s", d.sync(), d.partitions(),
          d.resumedFromStep() > 0 ? ", resumed at step " + d.resumedFromStep() : ""));
      row(b, "bytes/step", String.format(Locale.ROOT, "%s exchanged vs %s to average the full model (%.0fx less)",
          bytes(d.bytesPerStep()), bytes(d.fullModelBytesPerStep()), d.ratio()));
    }
    if (s.eval() != null) {
      EvalResult e = s.eval();
      row(b, "eval accuracy", String.format(Locale.ROOT, "%.4f", e.accuracy()));
      row(b, "eval loss", String.format(Locale.ROOT, "%.4f (%,d examples, %,d skipped)", e.loss(), e.examples(),
          e.skipped()));
    } else if (lmEval(s.outputDir()) != null) {   // a causal LM's eval.json: loss, perplexity, tokens
      var e = lmEval(s.outputDir());
      row(b, "eval loss", String.format(Locale.ROOT, "%.4f (perplexity %.2f, %,d target tokens)",
          e.path("loss").asDouble(), e.path("perplexity").asDouble(), e.path("tokens").asLong()));
    } else {
      row(b, "eval", "none (no data.test)");
    }
    row(b, "output", s.outputDir());
    row(b, "files", String.join(", ", files(s.outputDir())));
    return b.toString();
  }

  static String eval(EvalResult e) {
    StringBuilder b = new StringBuilder();
    row(b, "accuracy", String.format(Locale.ROOT, "%.4f", e.accuracy()));
    row(b, "loss", String.format(Locale.ROOT, "%.4f", e.loss()));
    row(b, "examples", String.format(Locale.ROOT, "%,d (%,d records skipped)", e.examples(), e.skipped()));
    row(b, "time", duration(e.elapsedMs()) + String.format(Locale.ROOT, " (%.1f examples/s)", e.examplesPerS()));
    int[][] c = e.confusion();
    if (c != null) {
      for (int i = 0; i < c.length; i++) {
        StringBuilder r = new StringBuilder();
        for (int v : c[i]) r.append(String.format(Locale.ROOT, "%8d", v));
        row(b, i == 0 ? "confusion" : "", "true " + i + ":" + r);
      }
    }
    return b.toString();
  }

  /** The output directory's eval.json when it is a causal LM's (it has a perplexity), else null. */
  private static com.fasterxml.jackson.databind.JsonNode lmEval(String dir) {
    if (dir == null) return null;
    java.nio.file.Path f = java.nio.file.Path.of(dir).resolve("eval.json");
    try {
      var n = new com.fasterxml.jackson.databind.ObjectMapper().readTree(f.toFile());
      return n.has("perplexity") ? n : null;
    } catch (java.io.IOException | RuntimeException e) {
      return null;
    }
  }

  static String eval(LmEvalResult e) {
    StringBuilder b = new StringBuilder();
    row(b, "loss", String.format(Locale.ROOT, "%.4f (mean token cross-entropy)", e.loss()));
    row(b, "perplexity", String.format(Locale.ROOT, "%.2f", e.perplexity()));
    row(b, "tokens", String.format(Locale.ROOT, "%,d target tokens", e.tokens()));
    row(b, "time", duration(e.millis()));
    return b.toString();
  }

  static String bytes(long n) {
    if (n < 1024) return n + " B";
    if (n < 1024 * 1024) return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
    if (n < 1024L * 1024 * 1024) return String.format(Locale.ROOT, "%.1f MiB", n / 1048576.0);
    return String.format(Locale.ROOT, "%.2f GiB", n / 1073741824.0);
  }

  private static void row(StringBuilder b, String label, String value) {
    b.append(String.format(Locale.ROOT, "%-16s %s%n", label, value));
  }

  private static List<String> files(String dir) {
    if (dir == null || !Files.isDirectory(Path.of(dir))) return List.of("(none)");
    try (Stream<Path> s = Files.list(Path.of(dir))) {
      return s.map(p -> p.getFileName().toString() + (Files.isDirectory(p) ? "/" : "")).sorted().toList();
    } catch (IOException e) {
      return List.of("(cannot list: " + e.getMessage() + ")");
    }
  }

  static String percent(long part, long whole) {
    return whole <= 0 ? "?%" : String.format(Locale.ROOT, "%.2f%%", 100.0 * part / whole);
  }

  static String duration(long ms) {
    long s = ms / 1000;
    return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
        : String.format(Locale.ROOT, "%d:%02d.%d", s / 60, s % 60, ms % 1000 / 100);
  }
}
