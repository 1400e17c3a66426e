package dev.peftspark.datasets.tools;

import dev.peftspark.core.io.MiniLm;
import dev.peftspark.datasets.DataFormatException;
import dev.peftspark.datasets.DemoDataException;
import dev.peftspark.datasets.Encoding;
import dev.peftspark.datasets.ReadResult;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.datasets.TextTokenizer;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

/**
 * Writes labelled texts as pre-tokenized JSONL ({"input_ids": [...], "label": k} per line), tokenized with the
 * project's MiniLM tokenizer, so an outside benchmark (bench/pytorch) trains on exactly the tokens the Java
 * side sees. The tokenizer is the one bundled with the MiniLM model ({@link MiniLm#tokenizerJson()}).
 * A command-line tool, not a test; see bench/pytorch/README.md for how to run it.
 *
 * <pre>
 * ExportTokenIds OUT.jsonl [--max-length 128] [--text-field text] [--label-field class] [URI ...]
 * </pre>
 * URIs default to demo:sentiment/amazon.json and demo:sentiment/yelp.json.
 */
public final class ExportTokenIds {
  private static final List<String> DEFAULT_URIS =
      List.of("demo:sentiment/amazon.json", "demo:sentiment/yelp.json");

  private ExportTokenIds() {}

  public static void main(String[] args) throws IOException {
    try {
      run(args);
    } catch (IllegalArgumentException | DataFormatException | DemoDataException e) {
      System.err.println("ExportTokenIds: " + e.getMessage());
      System.exit(2);
    }
  }

  private static void run(String[] args) throws IOException {
    if (args.length == 0 || args[0].startsWith("-")) {
      System.err.println("usage: ExportTokenIds OUT.jsonl [--max-length N] [--text-field F] [--label-field F]"
          + " [URI ...]   (URIs default to " + DEFAULT_URIS + ")");
      System.exit(2);
    }
    Path out = Path.of(args[0]);
    int maxLength = 128;
    String textField = "text";
    String labelField = "class";
    List<String> uris = new java.util.ArrayList<>();
    for (int i = 1; i < args.length; i++) {
      switch (args[i]) {
        case "--max-length" -> maxLength = maxLength(value(args, ++i, "--max-length"));
        case "--text-field" -> textField = value(args, ++i, "--text-field");
        case "--label-field" -> labelField = value(args, ++i, "--label-field");
        default -> uris.add(args[i]);
      }
    }
    if (uris.isEmpty()) {
      uris.addAll(DEFAULT_URIS);
    }

    ReadResult data = RecordReader.read(uris, ReaderOptions.defaults().withFields(textField, labelField));
    Encoding enc;
    try (TextTokenizer tok = new TextTokenizer(MiniLm.tokenizerJson())) {
      enc = tok.encode(data.texts(), maxLength);
    }
    int[] labels = data.labelIds();
    long tokens = write(out, enc, labels);
    System.err.printf("wrote %d examples (%d tokens, %d truncated to %d, %d skipped, labels %s) to %s%n",
        enc.size(), tokens, enc.truncated(), maxLength, data.skipped(), data.labels().describe(), out);
  }

  /** Writes next to OUT under a temporary name, then renames, so a failure leaves no half-written file. */
  private static long write(Path out, Encoding enc, int[] labels) throws IOException {
    Path dir = out.toAbsolutePath().getParent();
    Files.createDirectories(dir);
    Path tmp = Files.createTempFile(dir, "." + out.getFileName() + ".", ".tmp");
    long tokens = 0;
    try {
      try (BufferedWriter w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
        StringBuilder line = new StringBuilder();
        for (int i = 0; i < enc.size(); i++) {
          int[] ids = enc.ids(i);
          tokens += ids.length;
          line.setLength(0);
          line.append("{\"input_ids\": [");
          for (int j = 0; j < ids.length; j++) {
            line.append(j == 0 ? "" : ", ").append(ids[j]);
          }
          line.append("], \"label\": ").append(labels[i]).append("}\n");
          w.write(line.toString());
        }
      }
      if (Files.getFileStore(tmp).supportsFileAttributeView("posix")) {
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rw-r--r--")); // temp files are 0600
      }
      Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      tmp = null;
    } finally {
      if (tmp != null) {
        Files.deleteIfExists(tmp);
      }
    }
    return tokens;
  }

  private static int maxLength(String s) {
    try {
      return Integer.parseInt(s);
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException("--max-length must be an integer, got '" + s + "'");
    }
  }

  private static String value(String[] args, int i, String option) {
    if (i >= args.length) {
      throw new IllegalArgumentException(option + " needs a value");
    }
    return args[i];
  }
}
