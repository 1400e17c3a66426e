package dev.peftspark.spark.dist;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An optimizer's state ({@link dev.peftspark.core.optim.Optimizer#state()}) as plain arrays: the per-parameter
 * vectors (moments, momentum) and the scalar counters (step count, started flag).
 */
public record OptState(LinkedHashMap<String, float[]> vectors, LinkedHashMap<String, Long> counters)
    implements Serializable {

  public static OptState of(Map<String, INDArray> state) {
    LinkedHashMap<String, float[]> v = new LinkedHashMap<>();
    LinkedHashMap<String, Long> c = new LinkedHashMap<>();
    state.forEach((k, a) -> {
      if (a.rank() == 0) c.put(k, a.getLong(0));
      else v.put(k, dev.peftspark.core.nn.Floats.read(a));
    });
    return new OptState(v, c);
  }

  public Map<String, INDArray> toNd4j() {
    Map<String, INDArray> m = new LinkedHashMap<>();
    vectors.forEach((k, a) -> m.put(k, dev.peftspark.core.nn.Floats.write(a, a.length)));
    counters.forEach((k, n) -> m.put(k, Nd4j.scalar(n)));
    return m;
  }

  public long bytes() {
    return vectors.values().stream().mapToLong(a -> 4L * a.length).sum() + 8L * counters.size();
  }

  /** The weighted mean of the vectors; counters take the largest value (every partition ran the same steps). */
  public static OptState average(List<OptState> states, double[] weights) {
    double total = 0;
    for (double w : weights) total += w;
    LinkedHashMap<String, float[]> v = new LinkedHashMap<>();
    LinkedHashMap<String, Long> c = new LinkedHashMap<>();
    for (String k : states.get(0).vectors().keySet()) {
      float[] out = new float[states.get(0).vectors().get(k).length];
      average(states.stream().map(s -> s.vectors().get(k)).toList(), weights, total, out);
      v.put(k, out);
    }
    for (String k : states.get(0).counters().keySet()) {
      c.put(k, states.stream().mapToLong(s -> s.counters().get(k)).max().orElseThrow());
    }
    return new OptState(v, c);
  }

  /** out = Σ w_p · x_p / total, summed in list (partition) order so the bits never depend on timing. */
  static void average(List<float[]> xs, double[] weights, double total, float[] out) {
    double[] acc = new double[out.length];
    for (int p = 0; p < xs.size(); p++) {
      if (weights[p] == 0) continue;
      float[] x = xs.get(p);
      double w = weights[p] / total;
      for (int i = 0; i < acc.length; i++) acc[i] += w * x[i];
    }
    for (int i = 0; i < out.length; i++) out[i] = (float) acc[i];
  }
}
