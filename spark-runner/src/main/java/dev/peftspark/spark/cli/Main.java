package dev.peftspark.spark.cli;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.ParseResult;

/**
 * {@code peft-spark}: train, eval, embed, predict, combine, merge, generate, demo, version. Exit codes: 0 ok, 2 usage error, 1 failure; a failure
 * prints one line {@code error: <message>} on stderr (the stack trace only with {@code --verbose}, or in the
 * log at debug level).
 */
@Command(name = "peft-spark", mixinStandardHelpOptions = true, versionProvider = VersionCommand.Provider.class,
    description = "Parameter-efficient fine-tuning (LoRA, full, head-only) of pretrained transformers, "
        + "on one JVM or data-parallel on Apache Spark.")
public final class Main implements Callable<Integer> {
  private static final Logger LOG = LoggerFactory.getLogger(Main.class);

  @Mixin Verbose verbose;
  private final Cli cli;

  private Main(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() {
    cli.err().println("error: a command is required");
    new CommandLine(this).usage(cli.err());
    return 2;
  }

  public static void main(String[] args) {
    System.exit(run(new JobEngine(), System.out, System.err, args));
  }

  /** Runs one command line; returns the exit code. */
  public static int run(Engine engine, PrintStream out, PrintStream err, String... args) {
    Cli cli = new Cli(engine, out, err);
    CommandLine cmd = new CommandLine(new Main(cli))
        .addSubcommand(new TrainCommand(cli))
        .addSubcommand(new EvalCommand(cli))
        .addSubcommand(new EmbedCommand(cli))
        .addSubcommand(new PredictCommand(cli))
        .addSubcommand(new CombineCommand(cli))
        .addSubcommand(new MergeCommand(cli))
        .addSubcommand(new GenerateCommand(cli))
        .addSubcommand(new DemoCommand(cli))
        .addSubcommand(new VersionCommand(cli))
        .addSubcommand(new BenchCommand());
    cmd.getSubcommands().values()
        .forEach(sub -> sub.getCommandSpec().versionProvider(new VersionCommand.Provider())); // their -V
    cmd.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
    cmd.setErr(new PrintWriter(err, true, StandardCharsets.UTF_8));
    cmd.setExecutionExceptionHandler((ex, commandLine, parsed) -> {
      LOG.debug("command failed", ex);
      err.println("error: " + Errors.oneLine(ex));
      if (verbose(parsed)) ex.printStackTrace(err);
      err.flush();
      return 1;
    });
    return cmd.execute(args);
  }

  private static boolean verbose(ParseResult p) {
    for (; p != null; p = p.subcommand()) {
      if (p.hasMatchedOption(Verbose.NAME)) return true;
    }
    return false;
  }
}
