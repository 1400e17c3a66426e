package dev.peftspark.core.train;

/** The outcome of a training run; {@code eval} is null when the config names no test set. */
public record TrainSummary(String method, long trainableParams, long totalParams, int steps, int epochs,
                           double finalLoss, long wallMs, double examplesPerS, int trainExamples,
                           int skippedRecords, EvalResult eval, String outputDir) {}
