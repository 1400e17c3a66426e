package dev.peftspark.core.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A distributed run's per-step timeline as inline SVG: one stacked bar per optimizer step (or per group of
 * consecutive steps once there are more than {@link #MAX_BARS}, averaged), split into the slowest partition's
 * compute, the Spark exchange around it and the driver's update. Each bar carries a tooltip with its figures.
 */
final class SvgTimeline {
  static final int MAX_BARS = 120;
  static final String COMPUTE = "#3182bd", EXCHANGE = "#fd8d3c", UPDATE = "#31a354";

  private static final int W = 960, H = 280, LEFT = 64, RIGHT = 16, TOP = 46, BOTTOM = 36;

  /** One bar: steps {@code first..last} (mean milliseconds over them). */
  record Bar(int first, int last, double computeMs, double exchangeMs, double updateMs) {
    double total() { return computeMs + exchangeMs + updateMs; }
  }

  private SvgTimeline() {}

  /** The bars for the steps that report an exchange (in average mode, the last step of each round). */
  static List<Bar> bars(List<StepMetrics> steps) {
    List<StepMetrics> x = steps.stream().filter(m -> m.exchange() != null).toList();
    int per = Math.max(1, (x.size() + MAX_BARS - 1) / MAX_BARS);
    List<Bar> out = new ArrayList<>();
    for (int i = 0; i < x.size(); i += per) {
      List<StepMetrics> g = x.subList(i, Math.min(x.size(), i + per));
      double c = 0, e = 0, u = 0;
      for (StepMetrics m : g) {
        c += m.exchange().computeMs();
        e += m.exchange().sparkOverheadMs();
        u += m.exchange().driverUpdateMs();
      }
      out.add(new Bar(g.get(0).step(), g.get(g.size() - 1).step(), c / g.size(), e / g.size(), u / g.size()));
    }
    return out;
  }

  static String render(List<Bar> bars) {
    StringBuilder b = new StringBuilder();
    String title = "per-step timeline (ms): compute, Spark exchange, driver update";
    b.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
        + "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"%s\">%n", W, H, W, H, HtmlReport.esc(title)));
    b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"18\" class=\"title\">%s</text>%n", LEFT, title));
    legend(b);
    double max = bars.stream().mapToDouble(Bar::total).max().orElse(0);
    if (bars.isEmpty() || max <= 0) {
      return b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"tick\">no data</text>%n</svg>%n",
          W / 2 - 20, H / 2)).toString();
    }
    double top = max * 1.05, plotH = H - TOP - BOTTOM, slot = (double) (W - LEFT - RIGHT) / bars.size();
    b.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%.0f\" class=\"plot\"/>%n",
        LEFT, TOP, W - LEFT - RIGHT, plotH));
    for (double t : SvgChart.ticks(0, top)) {
      double y = TOP + plotH - t / top * plotH;
      b.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
          + "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.0f</text>%n",
          LEFT, y, W - RIGHT, y, LEFT - 6, y + 4, t));
    }
    double gap = slot >= 4 ? 1 : 0;
    for (int i = 0; i < bars.size(); i++) {
      Bar bar = bars.get(i);
      double x = LEFT + i * slot + gap / 2, w = slot - gap, base = TOP + plotH;
      String steps = bar.first() == bar.last() ? "step " + bar.first() : "steps " + bar.first() + "–" + bar.last();
      b.append(String.format(Locale.ROOT, "<g data-step=\"%d\"><title>%s: compute %.0f ms, exchange %.0f ms, "
          + "driver update %.0f ms</title>", bar.first(), steps, bar.computeMs(), bar.exchangeMs(), bar.updateMs()));
      for (double[] part : new double[][] {{bar.computeMs(), 0}, {bar.exchangeMs(), 1}, {bar.updateMs(), 2}}) {
        double h = part[0] / top * plotH;
        base -= h;
        b.append(String.format(Locale.ROOT, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>",
            x, base, w, h, part[1] == 0 ? COMPUTE : part[1] == 1 ? EXCHANGE : UPDATE));
      }
      b.append("</g>\n");
      if (i % Math.max(1, bars.size() / 8) == 0) {
        b.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">"
            + "%d</text>%n", x + w / 2, H - BOTTOM + 16, bar.first()));
      }
    }
    b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">optimizer step"
        + "</text>%n", (LEFT + W - RIGHT) / 2, H - 4));
    return b.append("</svg>\n").toString();
  }

  private static void legend(StringBuilder b) {
    String[][] items = {{COMPUTE, "compute (slowest partition)"}, {EXCHANGE, "Spark exchange"},
        {UPDATE, "driver update"}};
    int x = LEFT;
    for (String[] it : items) {
      b.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"28\" width=\"12\" height=\"10\" fill=\"%s\"/>"
          + "<text x=\"%d\" y=\"37\" class=\"tick\">%s</text>%n", x, it[0], x + 16, it[1]));
      x += 30 + 7 * it[1].length();
    }
  }
}
