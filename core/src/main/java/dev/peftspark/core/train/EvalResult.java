package dev.peftspark.core.train;

public record EvalResult(double accuracy, double loss, int examples, int skipped, long elapsedMs,
                         double examplesPerS, int[][] confusion) {}
