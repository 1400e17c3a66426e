package dev.peftspark.core.train;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.List;
import java.util.Locale;

/**
 * {@code report.html}: one self-contained page (inline CSS and SVG, no scripts, nothing fetched) with the loss
 * curve (raw and smoothed), learning rate, throughput, for a distributed run a per-step timeline (compute,
 * Spark exchange, driver update), the evaluation (accuracy, loss, confusion matrix),
 * trainable vs total parameters and the resolved config.
 */
public final class HtmlReport {
  /** Weight of the past in the smoothed loss (exponential moving average, bias-corrected). */
  static final double SMOOTHING = 0.9;

  private HtmlReport() {}

  public static void write(Path file, JobConfig cfg, List<StepMetrics> steps, TrainSummary s) throws IOException {
    String html = render(cfg, steps, s);
    OutputDir.writeAtomically(file, tmp -> Files.writeString(tmp, html));
  }

  static String render(JobConfig cfg, List<StepMetrics> steps, TrainSummary s) {
    StringBuilder b = new StringBuilder();
    b.append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
        .append("<title>peft-spark run: ").append(esc(s.method())).append(" on ").append(esc(cfg.model()))
        .append("</title>\n<style>\n").append(CSS).append("</style>\n</head>\n<body>\n");
    b.append("<h1>peft-spark run: ").append(esc(s.method())).append(" on ").append(esc(cfg.model())).append("</h1>\n")
        .append("<p class=\"sub\">").append(esc(s.outputDir())).append(" · ")
        .append(ZonedDateTime.now().format(DateTimeFormatter.RFC_1123_DATE_TIME)).append("</p>\n");
    summary(b, s);
    charts(b, steps);
    timeline(b, steps);
    eval(b, s.eval());
    b.append("<h2>Resolved config</h2>\n<pre>").append(esc(JobConfigLoader.toYaml(cfg))).append("</pre>\n");
    return b.append("</body>\n</html>\n").toString();
  }

  private static void summary(StringBuilder b, TrainSummary s) {
    b.append("<h2>Summary</h2>\n<div class=\"cards\">\n");
    card(b, "method", s.method());
    card(b, "trainable parameters", String.format(Locale.ROOT, "%,d of %,d (%s)", s.trainableParams(),
        s.totalParams(), ConsoleProgress.percent(s.trainableParams(), s.totalParams())));
    card(b, "steps / epochs", s.steps() + " / " + s.epochs());
    card(b, "final loss", fmt(s.finalLoss(), 4));
    card(b, "wall time", ConsoleProgress.duration(s.wallMs()));
    card(b, "examples/s", fmt(s.examplesPerS(), 1));
    card(b, "train examples", String.format(Locale.ROOT, "%,d (%,d records skipped)", s.trainExamples(),
        s.skippedRecords()));
    if (s.eval() != null) card(b, "eval accuracy", fmt(s.eval().accuracy(), 4));
    b.append("</div>\n<div class=\"bar\" title=\"trainable share of all parameters\"><div style=\"width:")
        .append(String.format(Locale.ROOT, "%.3f", s.totalParams() <= 0 ? 0
            : Math.max(0.2, 100.0 * s.trainableParams() / s.totalParams())))
        .append("%\"></div></div>\n<p class=\"sub\">trainable (dark) vs total parameters</p>\n");
  }

  private static void card(StringBuilder b, String label, String value) {
    b.append("<div class=\"card\"><div class=\"label\">").append(esc(label)).append("</div><div class=\"value\">")
        .append(esc(value)).append("</div></div>\n");
  }

  private static void charts(StringBuilder b, List<StepMetrics> steps) {
    int n = steps.size();
    double[] x = new double[n], loss = new double[n], lr = new double[n], exs = new double[n];
    for (int i = 0; i < n; i++) {
      StepMetrics m = steps.get(i);
      x[i] = m.step();
      loss[i] = m.loss();
      lr[i] = m.lr();
      exs[i] = m.examplesPerS();
    }
    b.append("<h2>Training</h2>\n<div class=\"charts\">\n");
    b.append(SvgChart.render("loss", "optimizer step", List.of(
        new SvgChart.Series("raw", "#9ecae1", x, loss, 1.2),
        new SvgChart.Series("smoothed", "#08519c", x, smooth(loss, SMOOTHING), 2.2))));
    b.append(SvgChart.render("learning rate", "optimizer step",
        List.of(new SvgChart.Series("lr", "#31a354", x, lr, 2))));
    b.append(SvgChart.render("throughput (examples/s)", "optimizer step",
        List.of(new SvgChart.Series("examples/s", "#e6550d", x, exs, 1.5))));
    b.append("</div>\n");
  }

  /** A distributed run: where each step's time went, as stacked bars and as means with the overhead's parts. */
  private static void timeline(StringBuilder b, List<StepMetrics> steps) {
    List<StepMetrics.Exchange> xs = steps.stream().map(StepMetrics::exchange).filter(x -> x != null).toList();
    if (xs.isEmpty()) return;
    b.append("<h2>Distributed steps</h2>\n").append(SvgTimeline.render(SvgTimeline.bars(steps)));
    b.append("<table class=\"timing\">\n<caption>mean per exchange over ").append(xs.size())
        .append(" exchanges; the Spark exchange is the job's wall time beyond its slowest partition's compute")
        .append("</caption>\n")
        .append("<tr><th>part</th><th>ms</th></tr>\n");
    row(b, "compute (slowest partition)", mean(xs, StepMetrics.Exchange::computeMs));
    row(b, "Spark exchange", mean(xs, StepMetrics.Exchange::sparkOverheadMs));
    row(b, "… broadcast create + destroy", mean(xs, StepMetrics.Exchange::broadcastMs));
    row(b, "… job submitted → last task started", mean(xs, StepMetrics.Exchange::launchMs));
    row(b, "… task reads payload and partition", mean(xs, StepMetrics.Exchange::taskReadMs));
    row(b, "… last task done → results on the driver", mean(xs, StepMetrics.Exchange::resultMs));
    row(b, "driver update", mean(xs, StepMetrics.Exchange::driverUpdateMs));
    b.append(String.format(Locale.ROOT, "<tr><th>bytes to / from executors</th><td>%,.0f / %,.0f</td></tr>%n",
        mean(xs, StepMetrics.Exchange::bytesToExecutors), mean(xs, StepMetrics.Exchange::bytesFromExecutors)));
    b.append("</table>\n");
  }

  private static double mean(List<StepMetrics.Exchange> xs, java.util.function.ToLongFunction<StepMetrics.Exchange> f) {
    return xs.stream().mapToLong(f).average().orElse(Double.NaN);
  }

  private static void row(StringBuilder b, String label, double ms) {
    b.append("<tr><th>").append(esc(label)).append("</th><td>").append(fmt(ms, 1)).append("</td></tr>\n");
  }

  /** Bias-corrected exponential moving average (as TensorBoard draws it); non-finite values are skipped. */
  static double[] smooth(double[] v, double weight) {
    double[] out = new double[v.length];
    double ema = 0;
    int seen = 0;
    for (int i = 0; i < v.length; i++) {
      if (!Double.isFinite(v[i])) {
        out[i] = Double.NaN;
        continue;
      }
      ema = weight * ema + (1 - weight) * v[i];
      seen++;
      out[i] = ema / (1 - Math.pow(weight, seen));
    }
    return out;
  }

  private static void eval(StringBuilder b, EvalResult e) {
    b.append("<h2>Evaluation</h2>\n");
    if (e == null) {
      b.append("<p>No test set in the config (data.test).</p>\n");
      return;
    }
    b.append("<div class=\"cards\">\n");
    card(b, "accuracy", fmt(e.accuracy(), 4));
    card(b, "loss", fmt(e.loss(), 4));
    card(b, "examples", String.format(Locale.ROOT, "%,d (%,d skipped)", e.examples(), e.skipped()));
    card(b, "time", ConsoleProgress.duration(e.elapsedMs()) + " · " + fmt(e.examplesPerS(), 1) + " ex/s");
    b.append("</div>\n");
    int[][] c = e.confusion();
    if (c == null || c.length == 0) return;
    b.append("<table class=\"confusion\">\n<caption>confusion matrix: rows true label, columns predicted</caption>\n")
        .append("<tr><th></th>");
    for (int j = 0; j < c[0].length; j++) b.append("<th>pred ").append(j).append("</th>");
    b.append("</tr>\n");
    for (int i = 0; i < c.length; i++) {
      b.append("<tr><th>true ").append(i).append("</th>");
      for (int j = 0; j < c[i].length; j++) {
        b.append(i == j ? "<td class=\"diag\">" : "<td>").append(c[i][j]).append("</td>");
      }
      b.append("</tr>\n");
    }
    b.append("</table>\n");
  }

  private static String fmt(double v, int decimals) {
    return Double.isFinite(v) ? String.format(Locale.ROOT, "%." + decimals + "f", v) : String.valueOf(v);
  }

  static String esc(String s) {
    if (s == null) return "";
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }

  private static final String CSS = """
      body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 2em auto;
             max-width: 1340px; padding: 0 1.5em; background: #fcfcfc; }
      h1 { font-size: 1.5em; margin-bottom: 0.1em; } h2 { font-size: 1.15em; margin-top: 1.8em;
             border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
      .sub { color: #777; margin-top: 0.2em; }
      .cards { display: flex; flex-wrap: wrap; gap: 0.7em; }
      .card { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 0.5em 0.9em; }
      .card .label { color: #777; font-size: 0.8em; } .card .value { font-size: 1.1em; font-weight: 600; }
      .bar { height: 10px; background: #dbe7f3; border-radius: 5px; margin-top: 1em; overflow: hidden; }
      .bar div { height: 100%; background: #08519c; }
      .charts { display: flex; flex-wrap: wrap; gap: 1em; }
      svg { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; max-width: 100%; height: auto; }
      svg .title { font-weight: 600; font-size: 13px; } svg .tick { font-size: 11px; fill: #555; }
      svg .plot { fill: none; stroke: #ccc; } svg .grid { stroke: #eee; }
      table.confusion { border-collapse: collapse; margin-top: 1em; }
      .confusion caption { color: #777; font-size: 0.85em; caption-side: bottom; padding-top: 0.3em; }
      .confusion th, .confusion td { border: 1px solid #ddd; padding: 0.3em 0.8em; text-align: right; }
      table.timing { border-collapse: collapse; margin-top: 1em; }
      .timing caption { color: #777; font-size: 0.85em; caption-side: bottom; padding-top: 0.3em; }
      .timing th, .timing td { border: 1px solid #ddd; padding: 0.3em 0.8em; }
      .timing th { text-align: left; font-weight: normal; } .timing td { text-align: right; }
      .confusion td.diag { background: #e5f5e0; font-weight: 600; }
      pre { background: #f4f4f4; padding: 1em; border-radius: 6px; overflow-x: auto; font-size: 13px; }
      """;
}
