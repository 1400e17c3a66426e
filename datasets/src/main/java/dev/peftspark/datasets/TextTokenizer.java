package dev.peftspark.datasets;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * A Hugging Face tokenizer.json run through DJL's Rust bindings (the linux-x86_64 native library is inside
 * the DJL jar; DJL is put in offline mode so it never tries to download one). Texts become [CLS] ... [SEP]
 * id sequences, truncated to a maximum length and not padded: padding is the batcher's job.
 */
public final class TextTokenizer implements AutoCloseable {
  static {
    // Never download: DJL would otherwise fetch a CUDA flavour of the native library on GPU machines.
    if (System.getProperty("ai.djl.offline") == null && System.getenv("DJL_OFFLINE") == null) {
      System.setProperty("ai.djl.offline", "true");
    }
  }

  private final HuggingFaceTokenizer tokenizer;
  private final Path source;

  /** Loads tokenizer.json; its own padding and truncation settings are switched off. */
  public TextTokenizer(Path tokenizerJson) {
    this.source = tokenizerJson;
    if (!Files.isRegularFile(tokenizerJson)) {
      throw new DataFormatException("tokenizer file not found: " + tokenizerJson);
    }
    try {
      tokenizer = HuggingFaceTokenizer.newInstance(tokenizerJson,
          Map.of("padding", "false", "truncation", "false", "addSpecialTokens", "true"));
    } catch (IOException | RuntimeException e) {
      throw new DataFormatException("cannot load tokenizer " + tokenizerJson + ": " + e.getMessage(), e);
    }
  }

  /**
   * Token ids for each text, at most {@code maxLength} long. A longer sequence keeps its first
   * maxLength-1 ids and its final [SEP], which is what the tokenizer's own truncation produces for a
   * single sequence.
   */
  public Encoding encode(List<String> texts, int maxLength) {
    if (maxLength < 2) {
      throw new IllegalArgumentException("maxLength must be >= 2 ([CLS] and [SEP]), got " + maxLength);
    }
    List<int[]> out = new ArrayList<>(texts.size());
    int truncated = 0;
    var encodings = tokenizer.batchEncode(texts, true, false);
    for (var e : encodings) {
      long[] ids = e.getIds();
      int n = Math.min(ids.length, maxLength);
      int[] row = new int[n];
      for (int i = 0; i < n; i++) {
        row[i] = Math.toIntExact(ids[i]);
      }
      if (ids.length > maxLength) {
        row[n - 1] = Math.toIntExact(ids[ids.length - 1]);
        truncated++;
      }
      out.add(row);
    }
    return new Encoding(out, truncated);
  }

  /** One text; see {@link #encode(List, int)}. */
  public int[] encode(String text, int maxLength) {
    return encode(List.of(text), maxLength).ids(0);
  }

  /** The tokens of a text, for debugging and tests. */
  public List<String> tokens(String text) {
    return Arrays.asList(tokenizer.encode(text).getTokens());
  }

  public Path source() {
    return source;
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
