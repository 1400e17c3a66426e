package dev.peftspark.spark.job;

import dev.peftspark.core.train.TokenBatch;
import dev.peftspark.datasets.Batch;
import dev.peftspark.datasets.Batcher;
import dev.peftspark.datasets.ReadResult;
import dev.peftspark.datasets.TextTokenizer;

import java.nio.file.Path;
import java.util.List;

/** Examples turned into token ids once, batched per epoch by length buckets. */
public record Tokenized(List<int[]> ids, int[] labels, int skipped, int truncated) {
  public static Tokenized of(ReadResult data, Path tokenizerJson, int maxLength) {
    try (TextTokenizer tok = new TextTokenizer(tokenizerJson)) {
      var enc = tok.encode(data.texts(), maxLength);
      return new Tokenized(enc.ids(), data.labelIds(), data.skipped(), enc.truncated());
    }
  }

  public int size() { return ids.size(); }

  public long tokens() { return ids.stream().mapToLong(a -> a.length).sum(); }

  public Batcher batcher(int batchSize) { return new Batcher(ids, labels, batchSize); }

  public static TokenBatch toTokenBatch(Batch b) {
    return new TokenBatch(b.inputIds(), b.attentionMask(), b.labels(), b.tokens());
  }

  public static List<TokenBatch> toTokenBatches(List<Batch> batches) {
    return batches.stream().map(Tokenized::toTokenBatch).toList();
  }
}
