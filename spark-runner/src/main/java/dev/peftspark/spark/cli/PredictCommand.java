package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.spark.ml.PredictJob;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "predict", mixinStandardHelpOptions = true,
    description = "Classify every row of a table with a saved adapter, distributed over the Spark executors "
        + "(spark.master); input order and a key column are kept.")
final class PredictCommand implements Callable<Integer> {
  private final Cli cli;

  @Option(names = "--config", required = true, paramLabel = "FILE",
      description = "Job config (YAML): model, data.text_field, data.max_length, train.batch_size, spark.*.")
  Path config;

  @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "Adapter directory (local or Hadoop URI).")
  String adapter;

  @Option(names = "--input", required = true, paramLabel = "URI",
      description = "Parquet (file or directory), JSON lines (.jsonl), JSON (.json) or CSV with a header (.csv).")
  String input;

  @Option(names = "--output", required = true, paramLabel = "URI", description = "New directory for the predictions.")
  String output;

  @Option(names = "--format", defaultValue = "parquet", paramLabel = "FMT",
      description = "Output format: parquet or jsonl (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(names = "--key-col", paramLabel = "COL",
      description = "Input column copied to the output as the key (default: row_id, the input position).")
  String keyCol;

  @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override a config key. Repeatable.")
  List<String> sets = new ArrayList<>();

  @Mixin Verbose verbose;

  PredictCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() throws Exception {
    JobConfig cfg = JobConfigLoader.load(config, sets);
    PredictJob.Result r = cli.engine().predict(cfg, adapter, input, output, format.toLowerCase(Locale.ROOT), keyCol);
    cli.out().printf(Locale.ROOT, "predicted %d rows in %.1f s (%.1f rows/s on %d partitions) -> %s%n", r.rows(),
        r.millis() / 1000.0, r.rowsPerS(), r.partitions(), r.output());
    cli.out().flush();
    return 0;
  }
}
