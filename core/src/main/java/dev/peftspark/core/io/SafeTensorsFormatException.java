package dev.peftspark.core.io;

import java.io.IOException;
import java.nio.file.Path;

/** A safetensors file that breaks the format; the message names the file and the problem. */
public final class SafeTensorsFormatException extends IOException {
  private final transient Path file;
  private final String problem;

  public SafeTensorsFormatException(Path file, String problem) {
    super(file + ": " + problem);
    this.file = file;
    this.problem = problem;
  }

  public SafeTensorsFormatException(Path file, String problem, Throwable cause) {
    super(file + ": " + problem, cause);
    this.file = file;
    this.problem = problem;
  }

  public Path file() { return file; }

  /** The problem alone, without the file name. */
  public String problem() { return problem; }
}
