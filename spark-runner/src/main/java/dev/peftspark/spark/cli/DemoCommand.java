package dev.peftspark.spark.cli;

import dev.peftspark.core.config.JobConfig;
import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.train.RunOutputs;
import dev.peftspark.core.train.TrainSummary;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "demo", mixinStandardHelpOptions = true,
    description = "LoRA on MiniLM: train on Amazon + Yelp review sentences, evaluate on IMDB (bundled data).")
final class DemoCommand implements Callable<Integer> {
  static final String RESOURCE = "demo.yaml";
  private final Cli cli;

  @Option(names = "--output", paramLabel = "DIR", description = "Output directory (default: ./runs/demo).")
  String output;

  @Option(names = "--set", paramLabel = "KEY=VALUE", description = "Override a demo config key. Repeatable.")
  List<String> sets = new ArrayList<>();

  @Mixin Verbose verbose;

  DemoCommand(Cli cli) {
    this.cli = cli;
  }

  /** The built-in demo config, with {@code --output} and then {@code --set} applied. */
  static JobConfig config(String output, List<String> sets) throws IOException {
    String text;
    try (InputStream in = DemoCommand.class.getResourceAsStream("/" + RESOURCE)) {
      if (in == null) throw new IOException("built-in resource " + RESOURCE + " is missing from the jar");
      text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
    List<String> overrides = new ArrayList<>();
    if (output != null) overrides.add("output_dir=" + output);
    overrides.addAll(sets);
    return JobConfigLoader.fromYaml(text, "built-in " + RESOURCE, overrides);
  }

  @Override
  public Integer call() throws Exception {
    JobConfig cfg = config(output, sets);
    JobConfigLoader.validateForTrain(cfg);
    TrainSummary s = cli.train(cfg);
    cli.out().println("report: " + Path.of(s.outputDir()).resolve(RunOutputs.REPORT));
    return 0;
  }
}
