package dev.peftspark.core.train;

/** One optimizer step as the trainer reports it (elapsedMs counts from the start of training). */
public record StepMetrics(int step, int epoch, double loss, double lr, double gradNorm,
                          double examplesPerS, double tokensPerS, long elapsedMs, int examples, int tokens) {}
