package dev.peftspark.core.train;

public record TrainSummary(String method, long trainableParams, long totalParams, int steps, int epochs,
                           double finalLoss, long wallMs, double examplesPerS, int trainExamples,
                           int skippedRecords, EvalResult eval, String outputDir) {}
