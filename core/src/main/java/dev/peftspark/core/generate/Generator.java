package dev.peftspark.core.generate;

import dev.peftspark.core.model.CausalLm;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * KV-cached decoding of one prompt: a prefill runs the whole prompt once and fills every layer's cache, then each
 * new token costs one single-token step against the cache. Stops at the end-of-sequence token (not returned), after
 * {@code maxNewTokens}, or when the model's positions run out.
 */
public final class Generator {
  private Generator() {}

  /**
   * @param eosId end-of-sequence token id, or -1 for none
   */
  public record Settings(int maxNewTokens, double temperature, double topP, long seed, int eosId) {
    public Settings {
      if (maxNewTokens < 0) throw new IllegalArgumentException("max_new_tokens must be >= 0, got " + maxNewTokens);
      new Sampler(temperature, topP, seed);   // validates
    }

    public static Settings greedy(int maxNewTokens, int eosId) { return new Settings(maxNewTokens, 0, 1, 0, eosId); }
  }

  public enum Stop { EOS, MAX_NEW_TOKENS, MAX_POSITIONS }

  /** The new tokens, why decoding stopped, and the time of the prefill and of the decoding steps. */
  public record Result(int[] tokens, Stop stop, int promptTokens, long prefillNanos, long decodeNanos) {
    /** New tokens per second over prefill and decoding together. */
    public double tokensPerSecond() {
      long ns = prefillNanos + decodeNanos;
      return ns == 0 ? 0 : tokens.length * 1e9 / ns;
    }
  }

  public static Result generate(CausalLm model, int[] prompt, Settings s) { return generate(model, prompt, s, t -> {}); }

  /** @param onToken called with each new token as it is chosen (for streaming output) */
  public static Result generate(CausalLm model, int[] prompt, Settings s, IntConsumer onToken) {
    if (prompt.length == 0) throw new IllegalArgumentException("the prompt has no tokens");
    int nv = model.virtualTokens();   // prompt learning's virtual tokens take the first positions
    if (nv + prompt.length > model.maxPositions())
      throw new IllegalArgumentException("the prompt has " + prompt.length + " tokens" + (nv > 0 ? " (+ " + nv + " virtual)" : "")
          + ", more than the model's " + model.maxPositions() + " positions");
    Sampler sampler = new Sampler(s.temperature(), s.topP(), s.seed());
    int capacity = (int) Math.min(model.maxPositions(), (long) nv + prompt.length + s.maxNewTokens());
    KvCache cache = model.newCache(capacity);
    long t0 = System.nanoTime();
    INDArray logits = model.logitsCached(prompt, cache);
    INDArray last = logits.get(NDArrayIndex.point(logits.size(0) - 1), NDArrayIndex.all());
    long t1 = System.nanoTime();
    int[] out = new int[s.maxNewTokens()];
    int n = 0;
    Stop stop = Stop.MAX_NEW_TOKENS;
    while (n < s.maxNewTokens()) {
      int next = sampler.next(last);
      if (next == s.eosId()) { stop = Stop.EOS; break; }
      out[n++] = next;
      onToken.accept(next);
      if (n == s.maxNewTokens()) break;
      if (cache.length() == cache.capacity()) { stop = Stop.MAX_POSITIONS; break; }
      last = model.logitsCached(new int[] {next}, cache);
    }
    return new Result(Arrays.copyOf(out, n), stop, prompt.length, t1 - t0, System.nanoTime() - t1);
  }
}
