package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "train", mixinStandardHelpOptions = true,
    description = "Fine-tune a model as a YAML config says; writes the adapter, metrics.jsonl, eval.json and "
        + "report.html to output_dir.")
final class TrainCommand implements Callable<Integer> {
  private final Cli cli;

  @Option(names = "--config", required = true, paramLabel = "FILE", description = "Job config (YAML).")
  Path config;

  @Option(names = "--set", paramLabel = "KEY=VALUE",
      description = "Override a config key, e.g. --set train.lr=1e-3 --set lora.target_modules=[query,key]. "
          + "Repeatable; applied in order after the file.")
  List<String> sets = new ArrayList<>();

  @Mixin Verbose verbose;

  TrainCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() throws Exception {
    JobConfig cfg = JobConfigLoader.load(config, sets);
    JobConfigLoader.validateForTrain(cfg);
    cli.train(cfg);
    return 0;
  }
}
