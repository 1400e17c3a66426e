package dev.peftspark.spark.cli;

import dev.peftspark.core.generate.Generator;
import dev.peftspark.spark.job.CausalLmTools;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "generate", mixinStandardHelpOptions = true,
    description = "Continue a prompt with a Hugging Face causal LM (LLaMA, Mistral, Qwen2, GPT-2), optionally with a "
        + "PEFT LoRA adapter: KV-cached decoding, greedy when --temperature is 0. Prints the continuation on stdout "
        + "and a one-line summary on stderr.")
final class GenerateCommand implements Callable<Integer> {
  private final Cli cli;

  @Option(names = "--model", required = true, paramLabel = "DIR",
      description = "Model directory: config.json, model.safetensors (or sharded), tokenizer.json.")
  Path model;

  @Option(names = "--adapter", paramLabel = "DIR", description = "Adapter directory: saved by train, or a plain PEFT LoRA/DoRA/IA3 one (adapter_config.json, adapter_model.safetensors).")
  Path adapter;

  @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "Text to continue.")
  String prompt;

  @Option(names = "--max-new-tokens", defaultValue = "64", paramLabel = "N", description = "Most tokens to add (default: ${DEFAULT-VALUE}).")
  int maxNewTokens;

  @Option(names = "--temperature", defaultValue = "0", paramLabel = "T", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
  double temperature;

  @Option(names = "--top-p", defaultValue = "1.0", paramLabel = "P", description = "Nucleus sampling mass, in (0, 1] (default: ${DEFAULT-VALUE}).")
  double topP;

  @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "Sampling seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Mixin Verbose verbose;

  GenerateCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() throws Exception {
    var settings = new Generator.Settings(maxNewTokens, temperature, topP, seed, -1);
    CausalLmTools.Generated g = CausalLmTools.generate(model, adapter, prompt, settings);
    cli.out().println(g.text());
    Generator.Result r = g.result();
    cli.err().println(String.format(Locale.ROOT, "%d tokens (prompt %d, stop: %s) in %.2f s: %.1f tokens/s",
        r.tokens().length, r.promptTokens(), r.stop().name().toLowerCase(Locale.ROOT),
        (r.prefillNanos() + r.decodeNanos()) / 1e9, r.tokensPerSecond()));
    return 0;
  }
}
