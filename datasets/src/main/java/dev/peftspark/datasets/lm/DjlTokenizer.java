package dev.peftspark.datasets.lm;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.peftspark.datasets.DataFormatException;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.Map;

/**
 * A tokenizer.json run through DJL's bindings of the Hugging Face tokenizers library, offline (the native library
 * is inside the DJL jar; never download one).
 */
final class DjlTokenizer implements AutoCloseable {
  static {
    if (System.getProperty("ai.djl.offline") == null && System.getenv("DJL_OFFLINE") == null) {
      System.setProperty("ai.djl.offline", "true");
    }
  }

  private final HuggingFaceTokenizer tokenizer;

  /** @param source names the tokenizer in error messages */
  DjlTokenizer(byte[] tokenizerJson, String source) {
    try {
      tokenizer = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(tokenizerJson),
          Map.of("padding", "false", "truncation", "false", "addSpecialTokens", "false"));
    } catch (IOException | RuntimeException e) {
      throw new DataFormatException("cannot load tokenizer " + source + ": " + e.getMessage(), e);
    }
  }

  int[] encode(String text, boolean addSpecialTokens) {
    return toInts(tokenizer.encode(text, addSpecialTokens, false).getIds());
  }

  String decode(int[] ids) {
    long[] longs = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      longs[i] = ids[i];
    }
    return tokenizer.decode(longs, false);
  }

  /** The special ids the post-processor puts before a single sequence (BOS for LLaMA; none for GPT-2). */
  int[] prefixIds() {
    int[] plain = encode("a", false);
    int[] framed = encode("a", true);
    for (int k = 0; k + plain.length <= framed.length; k++) {
      if (java.util.Arrays.equals(framed, k, k + plain.length, plain, 0, plain.length)) {
        return java.util.Arrays.copyOf(framed, k);
      }
    }
    return new int[0];
  }

  private static int[] toInts(long[] ids) {
    int[] out = new int[ids.length];
    for (int i = 0; i < ids.length; i++) {
      out[i] = Math.toIntExact(ids[i]);
    }
    return out;
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
