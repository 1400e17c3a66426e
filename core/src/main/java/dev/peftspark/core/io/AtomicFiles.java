package dev.peftspark.core.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file so that readers see either the old content or the complete new one: the bytes go to
 * a temporary file in the same folder, are forced to disk, and the temporary file is renamed over the
 * target. On any failure the temporary file is deleted and the target is left as it was.
 */
public final class AtomicFiles {
  private static final java.security.SecureRandom RANDOM = new java.security.SecureRandom();

  private AtomicFiles() {}

  /** Writes the body of a file through a channel positioned at 0. */
  @FunctionalInterface
  public interface Body {
    void writeTo(FileChannel channel) throws IOException;
  }

  /** Writes {@code target} atomically; creates missing parent folders. */
  public static void write(Path target, Body body) throws IOException {
    Path absolute = target.toAbsolutePath();
    Path dir = absolute.getParent();
    Files.createDirectories(dir);
    // Not Files.createTempFile: that makes the file owner-only; this one gets the usual umask mode.
    Path temp = dir.resolve("." + absolute.getFileName() + "." + Long.toHexString(RANDOM.nextLong()) + ".tmp");
    try {
      try (FileChannel channel = FileChannel.open(temp, StandardOpenOption.WRITE,
          StandardOpenOption.CREATE_NEW)) {
        body.writeTo(channel);
        channel.force(true);
      }
      try {
        Files.move(temp, absolute, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temp, absolute, StandardCopyOption.REPLACE_EXISTING);
      }
    } catch (IOException | RuntimeException | Error e) {
      try {
        Files.deleteIfExists(temp);
      } catch (IOException cleanup) {
        e.addSuppressed(cleanup);
      }
      throw e;
    }
  }

  /** Copies a stream into {@code target} atomically (the stream is not closed). */
  public static void copy(InputStream in, Path target) throws IOException {
    write(target, channel -> in.transferTo(Channels.newOutputStream(channel)));
  }

  /** Writes {@code buffer}'s remaining bytes fully, starting at the channel's current position. */
  public static void writeFully(FileChannel channel, java.nio.ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      channel.write(buffer);
    }
  }
}
