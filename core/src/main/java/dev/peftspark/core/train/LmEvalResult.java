package dev.peftspark.core.train;

/**
 * A causal LM's evaluation: mean next-token cross-entropy over the target tokens, its perplexity, and how many
 * target tokens there were.
 */
public record LmEvalResult(double loss, double perplexity, long tokens, long millis) {
  public static LmEvalResult of(double lossSum, long tokens, long millis) {
    double loss = tokens == 0 ? Double.NaN : lossSum / tokens;
    return new LmEvalResult(loss, Math.exp(loss), tokens, millis);
  }
}
