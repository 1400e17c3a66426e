package dev.peftspark.core.generate;

import dev.peftspark.core.nn.AttentionCache;
import org.nd4j.linalg.api.buffer.DataType;

import java.util.ArrayList;
import java.util.List;

/** Every layer's {@link AttentionCache} of one sequence (batch 1): what a prefill fills and each decoding step extends. */
public final class KvCache {
  private final List<AttentionCache> layers;

  public KvCache(int layers, int kvHeads, int headDim, int capacity, DataType dtype) {
    List<AttentionCache> all = new ArrayList<>();
    for (int i = 0; i < layers; i++) all.add(new AttentionCache(kvHeads, capacity, headDim, dtype));
    this.layers = List.copyOf(all);
  }

  /** Tokens cached so far, i.e. the position of the next token. */
  public int length() { return layers.get(0).length(); }

  public int capacity() { return layers.get(0).capacity(); }

  public int layers() { return layers.size(); }

  public AttentionCache layer(int i) { return layers.get(i); }

  /** Throws unless {@code n} more tokens fit. */
  public void checkRoom(int n) {
    if (n < 1) throw new IllegalArgumentException("no tokens to decode");
    if (length() + n > capacity())
      throw new IllegalArgumentException(length() + " cached + " + n + " new tokens exceed the cache's capacity of " + capacity());
  }
}
