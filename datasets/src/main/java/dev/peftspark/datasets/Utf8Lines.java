package dev.peftspark.datasets;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Strict UTF-8 readers: a malformed byte is an error, not a silent U+FFFD in the training text. */
public final class Utf8Lines {
  private Utf8Lines() {}

  public static BufferedReader reader(InputStream in) {
    var decoder = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
    return new BufferedReader(new InputStreamReader(in, decoder), 1 << 16);
  }

  /** Drops a leading byte-order mark (spreadsheet exports often start with one). */
  public static String stripBom(String firstLine) {
    return firstLine != null && firstLine.startsWith("\uFEFF") ? firstLine.substring(1) : firstLine;
  }
}
