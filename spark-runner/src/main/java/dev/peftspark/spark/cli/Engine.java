package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.train.EvalResult;
import dev.peftspark.core.train.LmEvalResult;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;

/** What the CLI needs from the library: the commands parse and print, the engine does the work. */
public interface Engine {
  /** Trains as {@code cfg} says, writing the adapter and run files to {@code cfg.outputDir()}. */
  TrainSummary train(JobConfig cfg, TrainListener listener) throws Exception;

  /** Evaluates the adapter in {@code adapterDir} on {@code cfg.data().test()}. */
  EvalResult eval(JobConfig cfg, String adapterDir) throws Exception;

  /** Evaluates a causal LM (the base, or base + {@code adapterDir} when not null) on {@code cfg.data().test()}. */
  default LmEvalResult evalCausalLm(JobConfig cfg, String adapterDir) throws Exception {
    throw new UnsupportedOperationException("this engine does not evaluate causal LMs");
  }

  /** Writes one sentence embedding per input record (JSONL in, JSONL out). */
  void embed(String model, String input, String output, String adapterDir, int batchSize) throws Exception;

  /** Classifies every row of {@code input} with the adapter on Spark, writing {@code output} (parquet or jsonl). */
  default dev.peftspark.spark.ml.PredictJob.Result predict(JobConfig cfg, String adapterDir, String input,
      String output, String format, String keyCol) throws Exception {
    return dev.peftspark.spark.ml.PredictJob.run(cfg, adapterDir, input, output, format, keyCol);
  }
}
