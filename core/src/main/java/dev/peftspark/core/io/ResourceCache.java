package dev.peftspark.core.io;

import java.io.IOException;
import java.io.InputStream;
import java.net.JarURLConnection;
import java.net.URL;
import java.net.URLConnection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.jar.JarEntry;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Copies classpath resources to files once per machine. A cached copy is trusted only if its size
 * and CRC-32 match the resource's, so a truncated or damaged copy is redone. For a resource inside a
 * jar both numbers come from the jar's directory, so checking costs one fast pass over the cached
 * file and nothing is inflated; within one JVM a copy already verified and unchanged since (same size
 * and modification time) is not read again.
 */
public final class ResourceCache {
  private static final Logger LOG = LoggerFactory.getLogger(ResourceCache.class);

  private record Fingerprint(long size, long crc32) {}

  private record Verified(long size, long modifiedMillis) {}

  private static final Map<String, Fingerprint> RESOURCES = new ConcurrentHashMap<>();
  private static final Map<Path, Verified> VERIFIED = new ConcurrentHashMap<>();

  private ResourceCache() {}

  /** The cache root: {@code $PEFT_SPARK_CACHE}, else {@code ~/.cache/peft-spark}. */
  public static Path root() {
    String env = System.getenv("PEFT_SPARK_CACHE");
    if (env != null && !env.isBlank()) {
      return Path.of(env);
    }
    return Path.of(System.getProperty("user.home"), ".cache", "peft-spark");
  }

  /**
   * Returns {@code target} (made absolute) holding exactly the bytes of classpath resource
   * {@code resource} (a path from the classpath root, no leading slash), extracting it atomically if
   * the file is missing or differs.
   */
  public static Path extract(String resource, Path target) throws IOException {
    Fingerprint expected = RESOURCES.get(resource);
    if (expected == null) {
      expected = fingerprint(resource);
      RESOURCES.put(resource, expected);
    }
    Path absolute = target.toAbsolutePath();
    if (matches(absolute, expected)) {
      return absolute;
    }
    LOG.info("Extracting classpath resource {} ({} bytes) to {}", resource, expected.size(), absolute);
    CRC32 crc = new CRC32();
    try (InputStream in = new CheckedInputStream(open(resource).getInputStream(), crc)) {
      AtomicFiles.copy(in, absolute);
    }
    if (crc.getValue() != expected.crc32() || Files.size(absolute) != expected.size()) {
      throw new IOException("resource " + resource + " did not match its own jar entry when copied to "
          + absolute + " (" + Files.size(absolute) + " bytes, crc32 " + Long.toHexString(crc.getValue())
          + "; expected " + expected.size() + " bytes, crc32 " + Long.toHexString(expected.crc32()) + ")");
    }
    VERIFIED.put(absolute, stat(absolute));
    return absolute;
  }

  private static boolean matches(Path file, Fingerprint expected) throws IOException {
    if (!Files.isRegularFile(file)) {
      return false;
    }
    if (Files.size(file) != expected.size()) {
      LOG.warn("Cached copy {} is {} bytes, expected {}; extracting again", file, Files.size(file), expected.size());
      return false;
    }
    Verified seen = VERIFIED.get(file);
    if (seen != null && seen.equals(stat(file))) {
      return true;
    }
    long actual;
    try (InputStream in = Files.newInputStream(file)) {
      actual = fingerprintOf(in).crc32();
    }
    if (actual != expected.crc32()) {
      LOG.warn("Cached copy {} is damaged (crc32 {}, expected {}); extracting again", file,
          Long.toHexString(actual), Long.toHexString(expected.crc32()));
      return false;
    }
    VERIFIED.put(file, stat(file));
    return true;
  }

  private static Verified stat(Path file) throws IOException {
    return new Verified(Files.size(file), Files.getLastModifiedTime(file).toMillis());
  }

  /** Size and CRC-32 from the jar directory when the resource is in a jar, else by reading it. */
  private static Fingerprint fingerprint(String resource) throws IOException {
    URLConnection connection = open(resource);
    if (connection instanceof JarURLConnection jar) {
      JarEntry entry = jar.getJarEntry();
      if (entry.getSize() >= 0 && entry.getCrc() >= 0) {
        return new Fingerprint(entry.getSize(), entry.getCrc());
      }
    }
    try (InputStream in = connection.getInputStream()) {
      return fingerprintOf(in);
    }
  }

  private static Fingerprint fingerprintOf(InputStream in) throws IOException {
    CRC32 crc = new CRC32();
    long size = 0;
    byte[] chunk = new byte[1 << 16];
    for (int n; (n = in.read(chunk)) > 0; ) {
      crc.update(chunk, 0, n);
      size += n;
    }
    return new Fingerprint(size, crc.getValue());
  }

  private static URLConnection open(String resource) throws IOException {
    URL url = ResourceCache.class.getClassLoader().getResource(resource);
    if (url == null) {
      throw new IOException("classpath resource '" + resource + "' not found");
    }
    return url.openConnection();
  }
}
