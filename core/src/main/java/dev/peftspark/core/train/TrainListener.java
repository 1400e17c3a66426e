package dev.peftspark.core.train;

public interface TrainListener {
  default void onStart(int totalSteps, long trainableParams, long totalParams) {}
  default void onStep(StepMetrics m) {}
  default void onEval(EvalResult r) {}
  default void onEnd(TrainSummary s) {}
}
