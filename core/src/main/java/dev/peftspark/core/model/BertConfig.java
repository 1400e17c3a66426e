package dev.peftspark.core.model;

/** Shape of a BERT-family encoder, named as in a Hugging Face {@code config.json}. */
public record BertConfig(
    int vocabSize,            // 30522 for MiniLM
    int hiddenSize,           // 384
    int numHiddenLayers,      // 6
    int numAttentionHeads,    // 12 (head dim 32)
    int intermediateSize,     // 1536
    int maxPositionEmbeddings,// 512
    int typeVocabSize,        // 2
    double layerNormEps) {    // 1e-12

  /** sentence-transformers/all-MiniLM-L6-v2. */
  public static BertConfig miniLmL6() {
    return new BertConfig(30522, 384, 6, 12, 1536, 512, 2, 1e-12);
  }

  public int headDim() { return hiddenSize / numAttentionHeads; }
}
