package dev.peftspark.datasets;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.zip.GZIPInputStream;

/**
 * Just enough of tar to unpack npm tarballs: 512-byte ustar headers (name + prefix), regular files, and the
 * long-name forms (pax "path", GNU 'L') skipped over or honoured. No links, no permissions.
 */
final class TarGz {
  private static final int BLOCK = 512;

  private TarGz() {}

  /**
   * Writes each regular file whose full entry name {@code wanted} accepts into {@code dir}, under its base
   * name (npm paths like package/test/fixtures/imdb.json become imdb.json). Returns the entry names taken.
   */
  static List<String> extract(Path tgz, Predicate<String> wanted, Path dir) throws IOException {
    List<String> taken = new ArrayList<>();
    Set<String> written = new HashSet<>();
    try (InputStream in = new GZIPInputStream(Files.newInputStream(tgz), 1 << 16)) {
      byte[] header = new byte[BLOCK];
      String longName = null;
      while (true) {
        if (in.readNBytes(header, 0, BLOCK) < BLOCK) {
          throw new IOException(tgz + ": tar archive ends inside a header");
        }
        if (isZero(header)) {
          return taken; // end-of-archive marker
        }
        checkChecksum(header, tgz);
        long size = size(header, tgz);
        char type = (char) header[156];
        String name = longName != null ? longName : name(header);
        longName = null;
        switch (type) {
          case 'x' -> longName = paxPath(new String(readData(in, size, tgz), StandardCharsets.UTF_8));
          case 'L' -> longName = cString(readData(in, size, tgz), 0, (int) size);
          case '0', '\0' -> {
            if (wanted.test(name)) {
              String base = name.substring(name.lastIndexOf('/') + 1);
              if (base.isEmpty() || base.equals(".") || base.equals("..") || !written.add(base)) {
                throw new IOException(tgz + ": cannot extract " + name + " as '" + base
                    + "' (empty or repeated file name)");
              }
              Files.write(dir.resolve(base), readData(in, size, tgz));
              taken.add(name);
            } else {
              skipData(in, size, tgz);
            }
          }
          default -> skipData(in, size, tgz); // directories, links, global pax headers
        }
      }
    }
  }

  private static byte[] readData(InputStream in, long size, Path tgz) throws IOException {
    if (size > Integer.MAX_VALUE - BLOCK) {
      throw new IOException(tgz + ": tar entry of " + size + " bytes is too large to extract");
    }
    byte[] data = in.readNBytes((int) size);
    if (data.length < size) {
      throw new IOException(tgz + ": tar archive ends inside an entry");
    }
    in.skipNBytes(padding(size));
    return data;
  }

  private static void skipData(InputStream in, long size, Path tgz) throws IOException {
    try {
      in.skipNBytes(size + padding(size));
    } catch (java.io.EOFException e) {
      throw new IOException(tgz + ": tar archive ends inside an entry");
    }
  }

  private static long padding(long size) {
    return (BLOCK - size % BLOCK) % BLOCK;
  }

  private static String name(byte[] h) {
    String name = cString(h, 0, 100);
    boolean ustar = new String(h, 257, 5, StandardCharsets.US_ASCII).equals("ustar");
    String prefix = ustar ? cString(h, 345, 155) : "";
    return prefix.isEmpty() ? name : prefix + "/" + name;
  }

  private static long size(byte[] h, Path tgz) throws IOException {
    if ((h[124] & 0x80) != 0) { // GNU base-256 for large sizes
      long v = 0;
      for (int i = 125; i < 136; i++) {
        v = (v << 8) | (h[i] & 0xff);
      }
      return v;
    }
    return octal(h, 124, 12, tgz);
  }

  private static void checkChecksum(byte[] h, Path tgz) throws IOException {
    long expected = octal(h, 148, 8, tgz);
    long sum = 0;
    for (int i = 0; i < BLOCK; i++) {
      sum += (i >= 148 && i < 156) ? ' ' : (h[i] & 0xff);
    }
    if (sum != expected) {
      throw new IOException(tgz + ": not a tar archive (bad header checksum)");
    }
  }

  private static long octal(byte[] h, int off, int len, Path tgz) throws IOException {
    int i = off;
    int end = off + len;
    while (i < end && h[i] == ' ') {
      i++; // leading spaces
    }
    long v = 0;
    for (; i < end && h[i] != 0 && h[i] != ' '; i++) {
      if (h[i] < '0' || h[i] > '7') {
        throw new IOException(tgz + ": not a tar archive (bad octal field)");
      }
      v = v * 8 + (h[i] - '0');
    }
    return v;
  }

  /** A pax extended header: records "LEN key=value\n"; returns the path, or null. */
  private static String paxPath(String pax) {
    for (String record : pax.split("\n")) {
      int space = record.indexOf(' ');
      if (space > 0 && record.startsWith("path=", space + 1)) {
        return record.substring(space + 1 + "path=".length());
      }
    }
    return null;
  }

  private static String cString(byte[] b, int off, int len) {
    int end = off;
    while (end < off + len && b[end] != 0) {
      end++;
    }
    return new String(b, off, end - off, StandardCharsets.UTF_8);
  }

  private static boolean isZero(byte[] b) {
    for (byte x : b) {
      if (x != 0) {
        return false;
      }
    }
    return true;
  }
}
