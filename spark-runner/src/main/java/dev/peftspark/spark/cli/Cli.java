package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.train.ConsoleProgress;
import dev.peftspark.core.train.TrainSummary;
import java.io.PrintStream;

/** What every command shares: the engine, and stdout for results (progress and errors go to stderr). */
record Cli(Engine engine, PrintStream out, PrintStream err) {
  /** Trains, then prints the summary table on stdout. */
  TrainSummary train(JobConfig cfg) throws Exception {
    TrainSummary s = engine.train(cfg, new ConsoleProgress(err, System.console() != null, cfg.train().logEvery()));
    out.print(SummaryTable.train(s));
    out.flush();
    return s;
  }
}
