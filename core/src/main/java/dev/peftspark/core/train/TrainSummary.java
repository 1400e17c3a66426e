package dev.peftspark.core.train;

/**
 * The outcome of a training run; {@code eval} is null when the config names no test set, {@code distributed}
 * for a single-JVM run.
 */
public record TrainSummary(String method, long trainableParams, long totalParams, int steps, int epochs,
                           double finalLoss, long wallMs, double examplesPerS, int trainExamples,
                           int skippedRecords, EvalResult eval, String outputDir, Distributed distributed) {
  public TrainSummary(String method, long trainableParams, long totalParams, int steps, int epochs,
                      double finalLoss, long wallMs, double examplesPerS, int trainExamples, int skippedRecords,
                      EvalResult eval, String outputDir) {
    this(method, trainableParams, totalParams, steps, epochs, finalLoss, wallMs, examplesPerS, trainExamples,
        skippedRecords, eval, outputDir, null);
  }

  /**
   * Network cost of a Spark run.
   *
   * @param bytesPerStep          mean bytes to plus from executors per optimizer step
   * @param fullModelBytesPerStep what averaging every weight of the model would move per step (all parameters
   *                              to and from each partition, 4 bytes each)
   * @param resumedFromStep       the checkpoint step the run resumed from (0: a fresh run)
   */
  public record Distributed(String sync, int partitions, long bytesPerStep, long fullModelBytesPerStep,
                            long sparkOverheadMs, int resumedFromStep) {
    /** How many times fewer bytes than full-model averaging. */
    public double ratio() { return bytesPerStep == 0 ? 0 : (double) fullModelBytesPerStep / bytesPerStep; }
  }
}
