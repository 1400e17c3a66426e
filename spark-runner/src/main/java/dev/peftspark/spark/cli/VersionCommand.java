package dev.peftspark.spark.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Properties;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.IVersionProvider;

@Command(name = "version", mixinStandardHelpOptions = true, description = "Print the peft-spark and Java versions.")
final class VersionCommand implements Callable<Integer> {
  private final Cli cli;

  VersionCommand(Cli cli) {
    this.cli = cli;
  }

  @Override
  public Integer call() {
    for (String line : new Provider().getVersion()) cli.out().println(line);
    return 0;
  }

  /** The version lines, from the build-filtered {@code peft-spark.properties}. */
  static final class Provider implements IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {
          "peft-spark " + properties().getProperty("version", "unknown"),
          "java " + System.getProperty("java.version") + " (" + System.getProperty("java.vendor") + ")"};
    }

    static Properties properties() {
      Properties p = new Properties();
      try (InputStream in = VersionCommand.class.getResourceAsStream("/peft-spark.properties")) {
        if (in != null) p.load(in);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      return p;
    }
  }
}
