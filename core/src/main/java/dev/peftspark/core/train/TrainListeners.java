package dev.peftspark.core.train;

import java.util.List;

/** Helpers for {@link TrainListener}. */
public final class TrainListeners {
  private TrainListeners() {}

  /** One listener that forwards every event to {@code all}, in order. */
  public static TrainListener compose(TrainListener... all) {
    List<TrainListener> ls = List.of(all);
    return new TrainListener() {
      @Override public void onStart(int totalSteps, long trainable, long total) {
        ls.forEach(l -> l.onStart(totalSteps, trainable, total));
      }

      @Override public void onStep(StepMetrics m) {
        ls.forEach(l -> l.onStep(m));
      }

      @Override public void onEval(EvalResult r) {
        ls.forEach(l -> l.onEval(r));
      }

      @Override public void onEnd(TrainSummary s) {
        ls.forEach(l -> l.onEnd(s));
      }
    };
  }
}
