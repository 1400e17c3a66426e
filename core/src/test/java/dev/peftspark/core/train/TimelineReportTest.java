package dev.peftspark.core.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
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

/** A distributed run's per-step figures: in metrics.jsonl and as the report's timeline. */
class TimelineReportTest {
  @TempDir Path tmp;

  /**
   * Step i: compute 100 + i ms, exchange 20 + i % 7 ms (5, 3, 2, 1 of it broadcast, launch, read, result),
   * driver update i % 3 ms.
   */
  static List<StepMetrics> distributed(int n) {
    List<StepMetrics> out = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      var x = new StepMetrics.Exchange(600_000, 598_000 + i, 2, 100 + i, 20 + i % 7, i % 3, 5, 3, 2, 1);
      out.add(new StepMetrics(i, 1, 0.7 / i, 1e-3, 0.5, 80, 3000, 130L * i, 32, 1200, x));
    }
    return out;
  }

  @Test
  void metricsCarryTheOverheadBreakdown() throws IOException {
    Path file = tmp.resolve("metrics.jsonl");
    try (MetricsJsonl m = new MetricsJsonl(file)) {
      distributed(2).forEach(m::onStep);
    }
    JsonNode second = new ObjectMapper().readTree(Files.readAllLines(file).get(1));
    assertEquals(598_002, second.get("bytes_from_executors").asLong());
    assertEquals(102, second.get("compute_ms").asLong());
    assertEquals(22, second.get("spark_overhead_ms").asLong());
    assertEquals(2, second.get("driver_update_ms").asLong());
    assertEquals(5, second.get("broadcast_ms").asLong());
    assertEquals(3, second.get("launch_ms").asLong());
    assertEquals(2, second.get("task_read_ms").asLong());
    assertEquals(1, second.get("result_ms").asLong());
    assertEquals(3000, second.get("tokens_per_s").asDouble());
  }

  @Test
  void oneStackedBarPerStepWithHeightsInProportion() {
    String html = HtmlReport.render(JobConfigLoader.DEFAULTS, distributed(10), RunFilesTest.summary(null));
    assertTrue(html.contains("<h2>Distributed steps</h2>"));
    assertEquals(10, count(html, "<g data-step="));
    // step 10: compute 110, exchange 23, update 1: the three rectangles' heights are in that proportion
    Matcher g = Pattern.compile("<g data-step=\"10\"><title>step 10: compute 110 ms, exchange 23 ms, driver update "
        + "1 ms</title>((?:<rect[^>]*/>){3})</g>").matcher(html);
    assertTrue(g.find(), "step 10's bar with its tooltip");
    Matcher h = Pattern.compile("height=\"([0-9.]+)\" fill=\"(#[0-9a-f]+)\"").matcher(g.group(1));
    List<Double> heights = new ArrayList<>();
    List<String> colors = new ArrayList<>();
    while (h.find()) {
      heights.add(Double.parseDouble(h.group(1)));
      colors.add(h.group(2));
    }
    assertEquals(List.of(SvgTimeline.COMPUTE, SvgTimeline.EXCHANGE, SvgTimeline.UPDATE), colors);
    assertEquals(110.0 / 23, heights.get(0) / heights.get(1), 0.02);
    assertEquals(23.0, heights.get(1) / heights.get(2), 0.5);
    // means over the 10 steps: compute 105.5, exchange (21+22+...)/10, broadcast 5
    double exchange = 0;
    for (int i = 1; i <= 10; i++) exchange += 20 + i % 7;
    assertTrue(html.contains("<th>compute (slowest partition)</th><td>105.5</td>"), "mean compute");
    assertTrue(html.contains("<th>Spark exchange</th><td>" + String.format(java.util.Locale.ROOT, "%.1f", exchange / 10)
        + "</td>"), "mean exchange");
    assertTrue(html.contains("<th>… broadcast create + destroy</th><td>5.0</td>"));
    assertEquals(count(html, "<svg"), count(html, "</svg>"));
  }

  @Test
  void longRunsAreGroupedIntoAveragedBars() {
    List<SvgTimeline.Bar> bars = SvgTimeline.bars(distributed(250));
    assertEquals(84, bars.size(), "ceil(250 / 120) = 3 steps per bar");
    assertEquals(1, bars.get(0).first());
    assertEquals(3, bars.get(0).last());
    assertEquals(102.0, bars.get(0).computeMs(), 1e-12);            // (101 + 102 + 103) / 3
    assertEquals((21 + 22 + 23) / 3.0, bars.get(0).exchangeMs(), 1e-12);
    assertEquals(250, bars.get(83).last());
    assertEquals(250, bars.get(83).first(), "the last group holds the one remaining step");
  }

  @Test
  void singleJvmRunsHaveNoTimeline() {
    String html = HtmlReport.render(JobConfigLoader.DEFAULTS, RunFilesTest.steps(5), RunFilesTest.summary(null));
    assertFalse(html.contains("Distributed steps"));
  }

  private static int count(String s, String sub) {
    return s.split(Pattern.quote(sub), -1).length - 1;
  }
}
