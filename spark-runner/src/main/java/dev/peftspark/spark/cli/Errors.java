package dev.peftspark.spark.cli;

import java.io.UncheckedIOException;
import java.lang.reflect.InvocationTargetException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.NoSuchFileException;
import java.util.concurrent.ExecutionException;

/** Turns a failure into the one line the CLI prints. */
final class Errors {
  private Errors() {}

  static String oneLine(Throwable t) {
    while ((t instanceof UncheckedIOException || t instanceof ExecutionException
        || t instanceof InvocationTargetException) && t.getCause() != null) {
      t = t.getCause();
    }
    String msg;
    if (t instanceof NoSuchFileException e) msg = "file not found: " + e.getFile();
    else if (t instanceof AccessDeniedException e) msg = "permission denied: " + e.getFile();
    else if (t instanceof FileAlreadyExistsException e) msg = "already exists: " + e.getFile();
    else if (t instanceof OutOfMemoryError) msg = "out of memory (" + t.getMessage() + "); raise -Xmx in PEFT_SPARK_JAVA_OPTS";
    else if (t.getMessage() == null || t.getMessage().isBlank()) {
      msg = t.getClass().getSimpleName() + (t.getCause() == null ? "" : ": " + oneLine(t.getCause()));
    } else msg = t.getMessage();
    return msg.replaceAll("\\s*\\R\\s*", " ").trim();
  }
}
