package dev.peftspark.spark.cli;

import dev.peftspark.spark.job.AdapterTools;
import dev.peftspark.spark.job.CausalLmTools;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "merge", mixinStandardHelpOptions = true,
    description = "Fold an adapter (LoRA, DoRA, QLoRA, IA3) into the base weights: a plain Hugging Face BERT model "
        + "directory (config.json, model.safetensors with the head as classifier.*, tokenizer.json); for a causal LM "
        + "directory (LLaMA, Mistral, Qwen2, GPT-2) and a PEFT LoRA/DoRA adapter, the same model directory with the "
        + "adapter merged (tokenizer and generation_config copied).")
final class MergeCommand implements Callable<Integer> {
  private final Cli cli;

  @Option(names = "--model", defaultValue = "minilm", paramLabel = "NAME",
      description = "Built-in model name or model directory the adapter was trained on (default: ${DEFAULT-VALUE}).")
  String model;

  @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "Adapter directory.")
  Path adapter;

  @Option(names = "--out", required = true, paramLabel = "DIR", description = "New model directory.")
  Path out;

  @Mixin Verbose verbose;

  MergeCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() throws Exception {
    if (CausalLmTools.isCausalLmDir(model)) CausalLmTools.merge(Path.of(model), adapter, out);
    else AdapterTools.merge(model, adapter, out);
    cli.err().println("merged model written to " + out);
    return 0;
  }
}
