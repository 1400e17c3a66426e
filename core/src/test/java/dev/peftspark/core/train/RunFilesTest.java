package dev.peftspark.core.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** metrics.jsonl, report.html and the other run files. */
class RunFilesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path tmp;

  static List<StepMetrics> steps(int n) {
    List<StepMetrics> out = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      out.add(new StepMetrics(i, 1 + (i - 1) / 4, 0.7 / i, 1e-3 * i / n, 0.5, 80 + i, 3000 + i, 400L * i, 32, 1200));
    }
    return out;
  }

  static final EvalResult EVAL = new EvalResult(0.842, 0.3875, 1000, 1, 12_300, 81.3, new int[][] {{420, 80}, {78, 422}});

  static TrainSummary summary(EvalResult eval) {
    return new TrainSummary("lora", 147_456, 22_860_000, 7, 2, 0.1, 95_000, 70.4, 1998, 2, eval, "runs/demo");
  }

  @Test
  void metricsJsonlHasOneSnakeCaseObjectPerStep() throws IOException {
    Path file = tmp.resolve("metrics.jsonl");
    try (MetricsJsonl m = new MetricsJsonl(file)) {
      steps(3).forEach(m::onStep);
      m.onStep(new StepMetrics(4, 1, Double.NaN, 1e-4, Double.POSITIVE_INFINITY, 1, 2, 1600, 32, 100));
    }
    List<String> lines = Files.readAllLines(file);
    assertEquals(4, lines.size());
    JsonNode first = JSON.readTree(lines.get(0));
    List<String> keys = new ArrayList<>();
    first.fieldNames().forEachRemaining(keys::add);
    assertEquals(List.of("step", "epoch", "loss", "lr", "grad_norm", "examples_per_s", "tokens_per_s", "elapsed_ms"),
        keys);
    assertEquals(1, first.get("step").asInt());
    assertEquals(0.7, first.get("loss").asDouble());
    assertEquals(400, first.get("elapsed_ms").asLong());
    JsonNode last = JSON.readTree(lines.get(3));
    assertTrue(last.get("loss").isNull());
    assertTrue(last.get("grad_norm").isNull());
  }

  @Test
  void reportHasAPolylineWithOnePointPerStepAndTheEvalFigures() throws IOException {
    Path file = tmp.resolve("report.html");
    JobConfig cfg = JobConfigLoader.fromYaml("output_dir: runs/<demo>\ndata: {label_field: class}", "t", List.of());
    HtmlReport.write(file, cfg, steps(7), summary(EVAL));
    String html = Files.readString(file);
    assertTrue(html.startsWith("<!DOCTYPE html>") && html.trim().endsWith("</html>"));
    assertTrue(html.contains("<svg"));
    Matcher raw = Pattern.compile("<polyline[^>]*data-series=\"raw\" points=\"([^\"]*)\"").matcher(html);
    assertTrue(raw.find(), "a raw-loss polyline");
    assertEquals(7, raw.group(1).trim().split(" ").length);
    assertTrue(html.contains("data-series=\"smoothed\""));
    assertTrue(html.contains("data-series=\"lr\""));
    assertTrue(html.contains("data-series=\"examples/s\""));
    assertTrue(html.contains("0.8420"), "accuracy");
    assertTrue(html.contains("<td class=\"diag\">420</td><td>80</td>"), "confusion matrix row");
    assertTrue(html.contains("147,456 of 22,860,000 (0.65%)"), "trainable vs total");
    assertTrue(html.contains("output_dir: runs/&lt;demo&gt;"), "escaped config");
    assertTrue(html.contains("label_field: class"));
    assertFalse(html.contains("<script") || html.contains("src=") || html.contains("<link"), "self-contained");
    assertEquals(countOf(html, "<svg"), countOf(html, "</svg>"));
  }

  @Test
  void reportWithoutEvalOrSteps() {
    String html = HtmlReport.render(JobConfigLoader.DEFAULTS, List.of(), summary(null));
    assertTrue(html.contains("No test set"));
    assertTrue(html.contains("no data"));
  }

  @Test
  void smoothingIsABiasCorrectedMovingAverage() {
    double[] s = HtmlReport.smooth(new double[] {2, 2, 2, Double.NaN, 2}, 0.9);
    assertEquals(2.0, s[0], 1e-12);
    assertEquals(2.0, s[2], 1e-12);
    assertTrue(Double.isNaN(s[3]));
    assertEquals(2.0, s[4], 1e-12);
    double[] t = HtmlReport.smooth(new double[] {1, 0}, 0.5);
    assertEquals(1.0 / 3, t[1], 1e-12); // (0.5·0.5·1 + 0.5·0) / (1 − 0.25)
  }

  @Test
  void runOutputsWritesEveryFile() throws IOException {
    JobConfig cfg = JobConfigLoader.fromYaml("output_dir: runs/x", "t", List.of());
    try (RunOutputs out = new RunOutputs(tmp, cfg)) {
      out.onStart(7, 1, 2);
      steps(7).forEach(out::onStep);
      out.onEval(EVAL);
      out.onEnd(summary(EVAL));
    }
    try (var files = Files.list(tmp)) {
      assertEquals(List.of("config.yaml", "eval.json", "metrics.jsonl", "report.html", "summary.json"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }
    assertEquals(cfg, JobConfigLoader.load(tmp.resolve("config.yaml"), List.of()));
    assertEquals(7, Files.readAllLines(tmp.resolve("metrics.jsonl")).size());
    JsonNode eval = JSON.readTree(tmp.resolve("eval.json").toFile());
    assertEquals(0.842, eval.get("accuracy").asDouble());
    assertEquals(422, eval.get("confusion").get(1).get(1).asInt());
    JsonNode sum = JSON.readTree(tmp.resolve("summary.json").toFile());
    assertEquals(147_456, sum.get("trainable_params").asLong());
    assertEquals(1000, sum.get("eval").get("examples").asInt());
  }

  private static int countOf(String s, String sub) {
    return s.split(Pattern.quote(sub), -1).length - 1;
  }
}
