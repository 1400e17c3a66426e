package dev.peftspark.core.train;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** A small line chart as inline SVG: one or more series over a shared x axis, with axis ticks and a legend. */
final class SvgChart {
  /** One line: its name in the legend, its colour, its points (non-finite y values are left out). */
  record Series(String name, String color, double[] x, double[] y, double strokeWidth) {}

  private static final int W = 640;
  private static final int H = 260;
  private static final int LEFT = 64;
  private static final int RIGHT = 16;
  private static final int TOP = 28;
  private static final int BOTTOM = 36;

  private SvgChart() {}

  static String render(String title, String xLabel, List<Series> series) {
    double xMin = Double.POSITIVE_INFINITY, xMax = Double.NEGATIVE_INFINITY;
    double yMin = Double.POSITIVE_INFINITY, yMax = Double.NEGATIVE_INFINITY;
    for (Series s : series) {
      for (int i = 0; i < s.x().length; i++) {
        if (!Double.isFinite(s.y()[i])) continue;
        xMin = Math.min(xMin, s.x()[i]);
        xMax = Math.max(xMax, s.x()[i]);
        yMin = Math.min(yMin, s.y()[i]);
        yMax = Math.max(yMax, s.y()[i]);
      }
    }
    StringBuilder b = new StringBuilder();
    b.append(String.format(Locale.ROOT, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
        + "width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"%s\">%n", W, H, W, H, HtmlReport.esc(title)));
    b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"18\" class=\"title\">%s</text>%n", LEFT,
        HtmlReport.esc(title)));
    if (xMin > xMax) {
      b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"tick\">no data</text>%n</svg>%n",
          W / 2 - 20, H / 2));
      return b.toString();
    }
    if (xMax == xMin) { xMin -= 1; xMax += 1; }
    if (yMax == yMin) { double pad = Math.max(Math.abs(yMax) * 0.05, 1e-9); yMin -= pad; yMax += pad; }
    double pad = (yMax - yMin) * 0.05;
    yMin -= pad;
    yMax += pad;
    Scale sx = new Scale(xMin, xMax, LEFT, W - RIGHT);
    Scale sy = new Scale(yMin, yMax, H - BOTTOM, TOP);
    axes(b, sx, sy, xLabel);
    for (Series s : series) {
      List<String> pts = new ArrayList<>();
      for (int i = 0; i < s.x().length; i++) {
        if (Double.isFinite(s.y()[i])) {
          pts.add(String.format(Locale.ROOT, "%.1f,%.1f", sx.map(s.x()[i]), sy.map(s.y()[i])));
        }
      }
      b.append(String.format(Locale.ROOT, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" "
          + "data-series=\"%s\" points=\"%s\"/>%n", s.color(), s.strokeWidth(), HtmlReport.esc(s.name()),
          String.join(" ", pts)));
    }
    int lx = W - RIGHT - 150;
    for (int i = 0; i < series.size(); i++) {
      int ly = TOP + 6 + i * 16;
      b.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
          + "stroke-width=\"3\"/><text x=\"%d\" y=\"%d\" class=\"tick\">%s</text>%n", lx, ly, lx + 18, ly,
          series.get(i).color(), lx + 24, ly + 4, HtmlReport.esc(series.get(i).name())));
    }
    return b.append("</svg>\n").toString();
  }

  private static void axes(StringBuilder b, Scale sx, Scale sy, String xLabel) {
    b.append(String.format(Locale.ROOT, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"plot\"/>%n",
        LEFT, TOP, W - LEFT - RIGHT, H - TOP - BOTTOM));
    for (double t : ticks(sy.lo, sy.hi)) {
      double y = sy.map(t);
      b.append(String.format(Locale.ROOT, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" class=\"grid\"/>"
          + "<text x=\"%d\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%s</text>%n",
          LEFT, y, W - RIGHT, y, LEFT - 6, y + 4, label(t)));
    }
    for (double t : ticks(sx.lo, sx.hi)) {
      if (t != Math.rint(t)) continue;   // the x axis counts optimizer steps
      double x = sx.map(t);
      b.append(String.format(Locale.ROOT, "<text x=\"%.1f\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s"
          + "</text>%n", x, H - BOTTOM + 16, label(t)));
    }
    b.append(String.format(Locale.ROOT, "<text x=\"%d\" y=\"%d\" class=\"tick\" text-anchor=\"middle\">%s</text>%n",
        (LEFT + W - RIGHT) / 2, H - 4, HtmlReport.esc(xLabel)));
  }

  /**
   * About five round tick values inside [lo, hi]; at most {@link #MAX_TICKS}, and fewer where the step is below the
   * values' precision (a diverged run's losses near 1e20 differ by less than one ulp's worth of steps).
   */
  static List<Double> ticks(double lo, double hi) {
    double raw = (hi - lo) / 5;
    if (!(raw > 0) || !Double.isFinite(raw)) return List.of(lo);
    double mag = Math.pow(10, Math.floor(Math.log10(raw)));
    double step = mag * (raw / mag < 1.5 ? 1 : raw / mag < 3 ? 2 : raw / mag < 7 ? 5 : 10);
    if (!(step > 0) || !Double.isFinite(step)) return List.of(lo);   // a range near Double.MIN_VALUE: 10^k underflows
    double first = Math.ceil(lo / step) * step;
    List<Double> out = new ArrayList<>();
    for (int i = 0; i < MAX_TICKS; i++) {
      double t = first + i * step;
      if (t > hi + step * 1e-9 || !out.isEmpty() && t <= out.get(out.size() - 1)) break;
      out.add(Math.abs(t) < step * 1e-9 ? 0 : t);
    }
    return out;
  }

  private static final int MAX_TICKS = 12;

  private static String label(double v) {
    double a = Math.abs(v);
    if (a != 0 && (a < 1e-2 || a >= 1e5)) return ConsoleProgress.scientific(v);
    String s = String.format(Locale.ROOT, "%.3f", v).replaceAll("0+$", "").replaceAll("\\.$", "");
    return s.equals("-0") ? "0" : s;
  }

  private record Scale(double lo, double hi, double from, double to) {
    double map(double v) {
      return from + (v - lo) / (hi - lo) * (to - from);
    }
  }
}
