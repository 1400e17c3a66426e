package dev.peftspark.spark.dist;

import java.io.Serializable;

/**
 * One partition's share of a {@code sync: gradient} step (classifier or causal LM), as its task returns it.
 *
 * @param grads     its gradient, weighted by its share of the GLOBAL batch so that the plain sum over partitions
 *                  is the step's gradient; null when the partition held no row of the step
 * @param loss      its share of the global batch's mean loss (the partitions' values add up to it)
 * @param gradNorm2 squared L2 norm of {@code grads}, to name a partition whose gradient is not finite
 * @param examples  rows it trained on
 * @param tokens    their tokens
 * @param targets   their target tokens (causal LM: they add up to the global batch's; 0 for a classifier)
 * @param timing    where the task's time went
 */
public record GradientPart(int partition, float[] grads, double loss, double gradNorm2, int examples, int tokens,
                           long targets, TaskTiming timing) implements Serializable {
  /** A partition that held no row of the step. */
  static GradientPart empty(int partition, TaskTiming timing) {
    return new GradientPart(partition, null, 0, 0, 0, 0, 0, timing);
  }

  public long bytes() { return (grads == null ? 0 : 4L * grads.length) + 48; }

  /** The same report without the gradient (once it has been added into a partial sum). */
  GradientPart withoutGrads() {
    return new GradientPart(partition, null, loss, gradNorm2, examples, tokens, targets, timing);
  }

  /** What is not finite in this part ("loss is NaN", ...), or null. */
  String nonFinite() {
    if (!Double.isFinite(loss)) return "loss is " + loss;
    return Double.isFinite(gradNorm2) ? null : "gradient norm² is " + gradNorm2;
  }
}
