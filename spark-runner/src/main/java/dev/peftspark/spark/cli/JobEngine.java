package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.train.EvalResult;
import dev.peftspark.core.train.LmEvalResult;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;
import dev.peftspark.spark.dist.LmSparkFitter;
import dev.peftspark.spark.dist.SparkFitter;
import dev.peftspark.spark.job.CausalLmJob;
import dev.peftspark.spark.job.ClassificationJob;
import dev.peftspark.spark.job.EmbedJob;

/**
 * The engine the CLI runs with. {@code runner: local} trains on this JVM; {@code runner: spark} makes this JVM
 * the Spark driver ({@code spark.master}, or spark-submit's master) with the partitions on the executors.
 */
public final class JobEngine implements Engine {
  @Override
  public TrainSummary train(JobConfig cfg, TrainListener listener) throws Exception {
    if (cfg.task().equals("causal_lm")) {
      if (!cfg.runner().equals("spark")) return CausalLmJob.train(cfg, listener);
      LmSparkFitter.checkSupported(cfg);   // before reading data and loading the base
      return CausalLmJob.train(cfg, listener, new LmSparkFitter(null));
    }
    return cfg.runner().equals("spark") ? ClassificationJob.train(cfg, listener, new SparkFitter(null))
        : ClassificationJob.train(cfg, listener);
  }

  @Override
  public EvalResult eval(JobConfig cfg, String adapterDir) throws Exception {
    return ClassificationJob.eval(cfg, adapterDir);
  }

  @Override
  public LmEvalResult evalCausalLm(JobConfig cfg, String adapterDir) throws Exception {
    return CausalLmJob.eval(cfg, adapterDir);
  }

  @Override
  public void embed(String model, String input, String output, String adapterDir, int batchSize) throws Exception {
    EmbedJob.run(model, input, output, adapterDir, batchSize);
  }
}
