package dev.peftspark.spark.cli;

import picocli.CommandLine.Option;

/** {@code --verbose}, accepted before or after the subcommand: full stack traces on failure. */
final class Verbose {
  static final String NAME = "--verbose";

  @Option(names = NAME, description = "On failure, print the full stack trace too.")
  boolean verbose;
}
