package dev.peftspark.core.train;

/** Observes a training run; every method has an empty default so a listener overrides what it needs. */
public interface TrainListener {
  default void onStart(int totalSteps, long trainableParams, long totalParams) {}

  default void onStep(StepMetrics m) {}

  default void onEval(EvalResult r) {}

  default void onEnd(TrainSummary s) {}
}
