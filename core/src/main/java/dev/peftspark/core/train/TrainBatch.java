package dev.peftspark.core.train;

/**
 * What the trainer needs of a batch, whatever the task: its rows, its real tokens, how to cut it into
 * micro-batches, and its weight in a step's mean loss (examples for a classifier, target tokens for a causal LM).
 *
 * @param <B> the batch type itself
 */
public interface TrainBatch<B extends TrainBatch<B>> {
  int size();

  /** Real (non-padding) tokens. */
  int tokens();

  /** Rows [from, to). */
  B slice(int from, int to);

  /** The units the step's loss is a mean over; a micro-batch's share of the step is its weight over the step's. */
  long weight();
}
