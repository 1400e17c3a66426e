package dev.peftspark.core.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class SvgChartTest {
  @Test
  void ticksAreRoundValuesInsideTheRange() {
    assertEquals(List.of(0.0, 2.0, 4.0, 6.0, 8.0, 10.0), SvgChart.ticks(0, 10));
    assertEquals(List.of(2.5, 2.6, 2.7, 2.8), SvgChart.ticks(2.45, 2.85).stream().map(t -> Math.round(t * 10) / 10.0).toList());
  }

  @Test
  @Timeout(10)
  void ticksEndWhereTheStepIsBelowTheValuesPrecision() {
    // a diverged run: losses ~1e20 that differ by a few ulps; the old loop never advanced (t + step == t)
    double lo = 1e20, hi = Math.nextUp(Math.nextUp(1e20));
    List<Double> ticks = SvgChart.ticks(lo, hi);
    assertTrue(!ticks.isEmpty() && ticks.size() <= 3, ticks.toString());
    assertEquals(List.of(5.0), SvgChart.ticks(5, 5));
    for (double t : SvgChart.ticks(0, 5 * Double.MIN_VALUE)) assertTrue(Double.isFinite(t), "tick " + t);
  }

  @Test
  @Timeout(10)
  void aChartOfHugeNearlyEqualLossesRenders() {
    double[] x = {1, 2, 3};
    double[] y = {1e20, Math.nextUp(1e20), Double.NaN};
    String svg = SvgChart.render("loss", "step", List.of(new SvgChart.Series("train", "#000", x, y, 1.5)));
    assertTrue(svg.startsWith("<svg") && svg.endsWith("</svg>\n"), svg);
  }
}
