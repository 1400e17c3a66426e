package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.train.EvalResult;
import dev.peftspark.core.train.TrainListener;
import dev.peftspark.core.train.TrainSummary;

/** The engine the CLI runs with: the single-JVM trainer, or the Spark job when {@code runner: spark}. */
public final class LocalEngine implements Engine {
  @Override
  public TrainSummary train(JobConfig cfg, TrainListener listener) {
    throw new UnsupportedOperationException("wired by lead");
  }

  @Override
  public EvalResult eval(JobConfig cfg, String adapterDir) {
    throw new UnsupportedOperationException("wired by lead");
  }

  @Override
  public void embed(String model, String input, String output, String adapterDir, int batchSize) {
    throw new UnsupportedOperationException("wired by lead");
  }
}
