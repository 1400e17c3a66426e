package dev.peftspark.spark.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

@Command(name = "embed", mixinStandardHelpOptions = true,
    description = "Write a sentence embedding for every record of a JSONL file (optionally through an adapter).")
final class EmbedCommand implements Callable<Integer> {
  private final Cli cli;

  @Spec CommandSpec spec;

  @Option(names = "--model", defaultValue = "minilm", paramLabel = "NAME",
      description = "Built-in model name or model directory (default: ${DEFAULT-VALUE}).")
  String model;

  @Option(names = "--input", required = true, paramLabel = "JSONL", description = "Records with a \"text\" field.")
  String input;

  @Option(names = "--output", required = true, paramLabel = "JSONL", description = "Where the embeddings go.")
  String output;

  @Option(names = "--adapter", paramLabel = "DIR", description = "Adapter directory to apply first.")
  String adapter;

  @Option(names = "--batch-size", defaultValue = "32", paramLabel = "N",
      description = "Records per forward pass (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Mixin Verbose verbose;

  EmbedCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() throws Exception {
    if (batchSize < 1) {
      throw new ParameterException(spec.commandLine(), "--batch-size must be ≥ 1, got " + batchSize);
    }
    cli.engine().embed(model, input, output, adapter, batchSize);
    cli.err().println("embeddings written to " + output);
    return 0;
  }
}
