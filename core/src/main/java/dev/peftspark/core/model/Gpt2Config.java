package dev.peftspark.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.nio.file.Path;

/** Shape of a {@code GPT2LMHeadModel}, named as in its Hugging Face {@code config.json}. */
public record Gpt2Config(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead, int nInner,
                         double layerNormEpsilon, boolean tieWordEmbeddings, double initializerRange) {
  public Gpt2Config {
    if (nEmbd % nHead != 0) throw new IllegalArgumentException("n_embd " + nEmbd + " is not a multiple of n_head " + nHead);
  }

  /** GPT-2 small (124M): 768 wide, 12 layers of 12 heads, vocabulary 50257, 1024 positions. */
  public static Gpt2Config small() { return new Gpt2Config(50257, 1024, 768, 12, 12, 3072, 1e-5, true, 0.02); }

  public static Gpt2Config fromJson(Path configJson) { return parse(ConfigJson.read(configJson)); }

  public static Gpt2Config fromJson(String source, JsonNode root) { return parse(new ConfigJson(source, root)); }

  private static Gpt2Config parse(ConfigJson c) {
    String type = c.optString("model_type", "gpt2");
    if (!type.equals("gpt2")) throw c.error("model_type '" + type + "' is not 'gpt2'");
    String act = c.optString("activation_function", "gelu_new");
    if (!act.equals("gelu_new") && !act.equals("gelu_pytorch_tanh"))
      throw c.error("activation_function '" + act + "' is not supported (GPT-2 uses 'gelu_new')");
    if (c.optBool("scale_attn_by_inverse_layer_idx", false) || c.optBool("reorder_and_upcast_attn", false))
      throw c.error("scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported");
    int embd = c.requireInt("n_embd"), head = c.requireInt("n_head");
    if (embd % head != 0) throw c.error("n_embd " + embd + " is not a multiple of n_head " + head);
    return new Gpt2Config(c.requireInt("vocab_size"), c.optInt("n_positions", c.optInt("n_ctx", 1024)), embd,
        c.requireInt("n_layer"), head, c.optInt("n_inner", 4 * embd), c.optDouble("layer_norm_epsilon", 1e-5),
        c.optBool("tie_word_embeddings", true), c.optDouble("initializer_range", 0.02));
  }

  public int headDim() { return nEmbd / nHead; }

  /** Base parameters (a tied head counted once). */
  public long parameterCount() {
    long h = nEmbd, i = nInner;
    long perLayer = 2 * 2 * h + (h * 3 * h + 3 * h) + (h * h + h) + (h * i + i) + (i * h + h);
    return (long) vocabSize * h + (long) nPositions * h + nLayer * perLayer + 2 * h + (tieWordEmbeddings ? 0 : (long) vocabSize * h);
  }

  public ObjectNode toJson(String torchDtype) {
    ObjectNode o = ConfigJson.JSON.createObjectNode();
    o.putArray("architectures").add("GPT2LMHeadModel");
    o.put("model_type", "gpt2");
    o.put("vocab_size", vocabSize);
    o.put("n_positions", nPositions);
    o.put("n_embd", nEmbd);
    o.put("n_layer", nLayer);
    o.put("n_head", nHead);
    if (nInner != 4 * nEmbd) o.put("n_inner", nInner);
    o.put("layer_norm_epsilon", layerNormEpsilon);
    o.put("activation_function", "gelu_new");
    o.put("tie_word_embeddings", tieWordEmbeddings);
    o.put("initializer_range", initializerRange);
    o.put("torch_dtype", torchDtype);
    return o;
  }
}
