package dev.peftspark.spark.cli;

import dev.peftspark.spark.job.AdapterTools;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

@Command(name = "combine", mixinStandardHelpOptions = true,
    description = "Combine LoRA adapters of one base into a new adapter with weights (PEFT's add_weighted_adapter).")
final class CombineCommand implements Callable<Integer> {
  private final Cli cli;

  @Spec CommandSpec spec;

  @Option(names = "--model", defaultValue = "minilm", paramLabel = "NAME",
      description = "Built-in model name or model directory the adapters were trained on (default: ${DEFAULT-VALUE}).")
  String model;

  @Option(names = "--adapter", required = true, paramLabel = "NAME=DIR:WEIGHT",
      description = "An adapter directory and its weight; repeat for each adapter.")
  List<String> adapters;

  @Option(names = "--type", defaultValue = "svd", paramLabel = "TYPE",
      description = "linear (equal ranks; A, B weighted by sqrt(w*scaling)), cat (rank = sum of ranks, exact), "
          + "svd (truncated SVD of the weighted sum of updates) (default: ${DEFAULT-VALUE}).")
  String type;

  @Option(names = "--rank", defaultValue = "0", paramLabel = "R",
      description = "Rank for svd (default: the largest rank among the adapters).")
  int rank;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "New adapter directory.")
  Path out;

  @Mixin Verbose verbose;

  CombineCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() throws Exception {
    if (rank < 0) throw new ParameterException(spec.commandLine(), "--rank must be ≥ 1 (or 0: default), got " + rank);
    List<AdapterTools.Input> inputs;
    try {
      inputs = adapters.stream().map(AdapterTools.Input::parse).toList();
      dev.peftspark.core.peft.AdapterCombine.Type.parse(type);
    } catch (IllegalArgumentException e) {
      throw new ParameterException(spec.commandLine(), e.getMessage());
    }
    AdapterTools.combine(model, inputs, type, rank, out);
    cli.err().println("combined adapter written to " + out);
    return 0;
  }
}
