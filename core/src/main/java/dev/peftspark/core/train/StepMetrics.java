package dev.peftspark.core.train;

public record StepMetrics(int step, int epoch, double loss, double lr, double gradNorm,
                          double examplesPerS, double tokensPerS, long elapsedMs, int examples, int tokens) {}
