package dev.peftspark.spark.job;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.train.LmBatch;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.core.train.Trainer;
import dev.peftspark.datasets.lm.LmBatcher;

/** Fits a causal LM's trainable parameters to batched rows: on this JVM, or data-parallel on Spark. */
public interface LmFitter {
  Trainer.Result fit(PeftCausalLm model, LmBatcher batcher, JobConfig cfg, TrainListener listener) throws Exception;

  /** Network figures of the last fit, or null when nothing crossed a network. */
  default TrainSummary.Distributed distributed() { return null; }

  /** The single-JVM trainer ({@code runner: local}). */
  LmFitter LOCAL = (model, batcher, cfg, listener) -> {
    Trainer<LmBatch> trainer = new Trainer<>(model, cfg.train(), batcher.numBatches());
    return trainer.fit(e -> batcher.epoch(cfg.train().seed(), e), listener);
  };
}
