package dev.peftspark.core.train;

/**
 * One optimizer step as the trainer reports it (elapsedMs counts from the start of training); {@code exchange}
 * is null for a single-JVM run.
 */
public record StepMetrics(int step, int epoch, double loss, double lr, double gradNorm,
                          double examplesPerS, double tokensPerS, long elapsedMs, int examples, int tokens,
                          Exchange exchange) {
  public StepMetrics(int step, int epoch, double loss, double lr, double gradNorm, double examplesPerS,
                     double tokensPerS, long elapsedMs, int examples, int tokens) {
    this(step, epoch, loss, lr, gradNorm, examplesPerS, tokensPerS, elapsedMs, examples, tokens, null);
  }

  /**
   * What a distributed step moved and where its time went.
   *
   * @param bytesToExecutors   broadcast payload (adapter values, example indices) times the tasks that read it
   * @param bytesFromExecutors the partitions' results (adapter gradients or parameters, loss, counts)
   * @param partitions         tasks of the step
   * @param computeMs          the slowest partition's forward/backward time
   * @param sparkOverheadMs    the Spark job's wall time minus {@code computeMs} (scheduling, transfer, reduce)
   * @param driverUpdateMs     the driver's summing, clipping and optimizer step
   * @param broadcastMs        part of the overhead: creating and destroying the step's broadcast (0: none)
   * @param launchMs           part of the overhead: job submitted until its last task started
   * @param taskReadMs         part of the overhead: the slowest task reading its payload and cached partition
   * @param resultMs           part of the overhead: last task finished until the driver held every result
   */
  public record Exchange(long bytesToExecutors, long bytesFromExecutors, int partitions, long computeMs,
                         long sparkOverheadMs, long driverUpdateMs, long broadcastMs, long launchMs,
                         long taskReadMs, long resultMs) {
    /** Without the overhead's breakdown. */
    public Exchange(long bytesToExecutors, long bytesFromExecutors, int partitions, long computeMs,
                    long sparkOverheadMs, long driverUpdateMs) {
      this(bytesToExecutors, bytesFromExecutors, partitions, computeMs, sparkOverheadMs, driverUpdateMs, 0, 0, 0, 0);
    }
  }
}
