package dev.peftspark.core.train;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * Atomic outputs: everything a job writes goes to a sibling temporary name first and is renamed into place,
 * so a failed run leaves no partial file or adapter behind. Two ways to use it:
 * <ul>
 *   <li>one file or directory: {@link #writeAtomically(Path, IoConsumer)};</li>
 *   <li>a whole run: {@code stage = staging(out)}, write everything into {@code stage}, then
 *       {@code commit(stage, out)}; on failure {@code abort(stage)}.</li>
 * </ul>
 * An existing target is replaced only once the new one is complete.
 */
public final class OutputDir {
  private OutputDir() {}

  /** Like {@link java.util.function.Consumer} but may throw {@link IOException}. */
  @FunctionalInterface
  public interface IoConsumer<T> {
    void accept(T t) throws IOException;
  }

  /**
   * Calls {@code writer} with a temporary sibling path of {@code target} (not yet existing; the writer creates a
   * file or a directory there), then renames it to {@code target}. On any failure the temporary is deleted and
   * the exception rethrown; {@code target} is untouched.
   */
  public static void writeAtomically(Path target, IoConsumer<Path> writer) throws IOException {
    Path abs = target.toAbsolutePath().normalize();
    Files.createDirectories(abs.getParent());
    Path tmp = sibling(abs, "tmp");
    try {
      writer.accept(tmp);
      if (!Files.exists(tmp)) throw new IOException("nothing was written for " + target);
      replace(tmp, abs);
    } catch (IOException | RuntimeException | Error e) {
      deleteQuietly(tmp);
      throw e;
    }
  }

  /** Creates and returns an empty staging directory beside {@code outputDir} (same file system, so rename works). */
  public static Path staging(Path outputDir) throws IOException {
    Path abs = outputDir.toAbsolutePath().normalize();
    Files.createDirectories(abs.getParent());
    return Files.createDirectory(sibling(abs, "staging"));
  }

  /** Moves a complete staging directory to {@code outputDir}, replacing an existing one. */
  public static void commit(Path staging, Path outputDir) throws IOException {
    replace(staging, outputDir.toAbsolutePath().normalize());
  }

  /** Deletes a staging directory after a failure (never throws: the original failure is what matters). */
  public static void abort(Path staging) {
    deleteQuietly(staging);
  }

  private static Path sibling(Path target, String kind) {
    return target.resolveSibling("." + target.getFileName() + "." + kind + "-" + UUID.randomUUID().toString()
        .substring(0, 8));
  }

  /** rename(2) replaces a file or an empty directory; a non-empty directory is first moved aside. */
  private static void replace(Path source, Path target) throws IOException {
    try {
      Files.move(source, target, StandardCopyOption.ATOMIC_MOVE);
      return;
    } catch (AtomicMoveNotSupportedException e) {
      throw new IOException("cannot rename " + source + " to " + target + " atomically", e);
    } catch (FileSystemException e) {
      if (!Files.exists(target, LinkOption.NOFOLLOW_LINKS)) throw e;
      // target is a non-empty directory (or a different kind of file): move it aside below
    }
    Path old = sibling(target, "old");
    Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
    try {
      Files.move(source, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      Files.move(old, target, StandardCopyOption.ATOMIC_MOVE); // put the previous output back
      throw e;
    }
    deleteQuietly(old);
  }

  static void deleteQuietly(Path p) {
    if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) return;
    try (Stream<Path> all = Files.walk(p)) {
      all.sorted(Comparator.reverseOrder()).forEach(f -> {
        try {
          Files.deleteIfExists(f);
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      });
    } catch (IOException | UncheckedIOException e) {
      // best effort: leaving a hidden temporary behind is better than masking the real error
    }
  }
}
