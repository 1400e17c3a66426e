package dev.peftspark.core.train;

/** Evaluation on a test set; {@code confusion[trueLabel][predictedLabel]} counts examples. */
public record EvalResult(double accuracy, double loss, int examples, int skipped, long elapsedMs,
                         double examplesPerS, int[][] confusion) {}
