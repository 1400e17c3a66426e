package dev.peftspark.spark.job;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TokenBatch;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.core.train.Trainer;

/** Fits a model's trainable parameters to tokenized training data: on this JVM, or data-parallel on Spark. */
public interface Fitter {
  Trainer.Result fit(PeftClassifier model, Tokenized train, JobConfig cfg, TrainListener listener) throws Exception;

  /** Network figures of the last fit, or null when nothing crossed a network. */
  default TrainSummary.Distributed distributed() { return null; }

  /** The single-JVM trainer ({@code runner: local}). */
  Fitter LOCAL = (model, train, cfg, listener) -> {
    var batcher = train.batcher(cfg.train().batchSize());
    Trainer<TokenBatch> trainer = new Trainer<>(model, cfg.train(), batcher.numBatches());
    return trainer.fit(e -> Tokenized.toTokenBatches(batcher.epoch(cfg.train().seed(), e)), listener);
  };
}
