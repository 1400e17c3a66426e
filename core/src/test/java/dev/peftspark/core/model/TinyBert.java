package dev.peftspark.core.model;

import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;

import static dev.peftspark.core.nn.GradCheck.randn;

/** A small random BERT with Hugging Face tensor names, for gradient checks and fast tests. */
public final class TinyBert {
  private TinyBert() {}

  public static BertConfig config() { return new BertConfig(40, 8, 2, 2, 12, 16, 2, 1e-12); }

  public static Map<String, INDArray> weights(BertConfig c, long seed) {
    SplittableRandom rng = new SplittableRandom(seed);
    Map<String, INDArray> w = new LinkedHashMap<>();
    int h = c.hiddenSize(), i = c.intermediateSize();
    w.put("embeddings.word_embeddings.weight", randn(rng, c.vocabSize(), h));
    w.put("embeddings.position_embeddings.weight", randn(rng, c.maxPositionEmbeddings(), h).muli(0.1));
    w.put("embeddings.token_type_embeddings.weight", randn(rng, c.typeVocabSize(), h).muli(0.1));
    norm(w, rng, "embeddings.LayerNorm", h);
    for (int l = 0; l < c.numHiddenLayers(); l++) {
      String p = "encoder.layer." + l + ".";
      for (String m : new String[] {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
        linear(w, rng, p + m, h, h);
      }
      norm(w, rng, p + "attention.output.LayerNorm", h);
      linear(w, rng, p + "intermediate.dense", i, h);
      linear(w, rng, p + "output.dense", h, i);
      norm(w, rng, p + "output.LayerNorm", h);
    }
    return w;
  }

  private static void linear(Map<String, INDArray> w, SplittableRandom rng, String name, int out, int in) {
    w.put(name + ".weight", randn(rng, out, in).muli(1.0 / Math.sqrt(in)));
    w.put(name + ".bias", randn(rng, out).muli(0.1));
  }

  private static void norm(Map<String, INDArray> w, SplittableRandom rng, String name, int h) {
    w.put(name + ".weight", randn(rng, h).muli(0.1).addi(1));
    w.put(name + ".bias", randn(rng, h).muli(0.1));
  }
}
