package dev.peftspark.spark.cli;

import dev.peftspark.core.config.ConfigException;
import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.train.EvalResult;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true,
    description = "Evaluate a saved adapter on the config's test data (data.test); for task: causal_lm the "
        + "adapter is optional (the base alone) and eval.json holds loss, perplexity and tokens.")
final class EvalCommand implements Callable<Integer> {
  private final Cli cli;

  @Option(names = "--config", required = true, paramLabel = "FILE", description = "Job config (YAML).")
  Path config;

  @Option(names = "--adapter", paramLabel = "DIR",
      description = "Adapter directory (adapter_config.json + adapter_model.safetensors), e.g. a train output_dir.")
  String adapter;

  @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override a config key. Repeatable.")
  List<String> sets = new ArrayList<>();

  @Mixin Verbose verbose;

  EvalCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() throws Exception {
    JobConfig cfg = JobConfigLoader.load(config, sets);
    JobConfigLoader.validateForEval(cfg);
    if (cfg.task().equals("causal_lm")) {
      cli.out().print(SummaryTable.eval(cli.engine().evalCausalLm(cfg, adapter)));
      cli.out().flush();
      return 0;
    }
    if (adapter == null) throw new ConfigException(null, "eval of a classifier needs --adapter DIR (a train output_dir)");
    EvalResult r = cli.engine().eval(cfg, adapter);
    cli.out().print(SummaryTable.eval(r));
    cli.out().flush();
    return 0;
  }
}
