package dev.peftspark.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.nn.Rope;

import java.nio.file.Path;
import java.util.List;

/**
 * Shape of a LLaMA-family causal LM ({@code LlamaForCausalLM}, {@code MistralForCausalLM}, {@code Qwen2ForCausalLM}),
 * named as in a Hugging Face {@code config.json}.
 *
 * @param attentionBias q/k/v projections have biases (Qwen2 always; LLaMA's {@code attention_bias})
 * @param outputBias    o_proj has a bias (LLaMA's {@code attention_bias}; never in Qwen2)
 * @param slidingWindow keys further back than this are masked (Mistral's {@code sliding_window}); 0 for none
 * @param ropeScaling   null, or a rescaling of the rotary frequencies
 */
public record LlamaConfig(
    String modelType, int vocabSize, int hiddenSize, int intermediateSize, int numHiddenLayers,
    int numAttentionHeads, int numKeyValueHeads, int headDim, int maxPositionEmbeddings, double rmsNormEps,
    double ropeTheta, RopeScaling ropeScaling, boolean tieWordEmbeddings, boolean attentionBias,
    boolean outputBias, boolean mlpBias, int slidingWindow, double initializerRange) {

  public static final List<String> MODEL_TYPES = List.of("llama", "mistral", "qwen2");

  /** {@code rope_scaling}: "linear" divides every frequency by {@code factor}; "llama3" is Llama 3.1's banded rule. */
  public record RopeScaling(String type, double factor, double lowFreqFactor, double highFreqFactor,
                            int originalMaxPositions) {}

  public LlamaConfig {
    if (!MODEL_TYPES.contains(modelType))
      throw new IllegalArgumentException("model_type '" + modelType + "' is not one of " + MODEL_TYPES);
    if (numAttentionHeads % numKeyValueHeads != 0)
      throw new IllegalArgumentException("num_attention_heads " + numAttentionHeads + " is not a multiple of num_key_value_heads " + numKeyValueHeads);
    if (headDim % 2 != 0) throw new IllegalArgumentException("head dimension " + headDim + " must be even for rotary embeddings");
    // a zero size would only fail later, deep inside weight loading or initialisation, without naming the field
    if (vocabSize < 1 || hiddenSize < 1 || intermediateSize < 1)
      throw new IllegalArgumentException("vocab_size, hidden_size and intermediate_size must be at least 1, got "
          + vocabSize + ", " + hiddenSize + ", " + intermediateSize);
  }

  /** A plain LLaMA shape (head_dim = hidden / heads, no biases, theta 10000, eps 1e-6). */
  public static LlamaConfig llama(int vocab, int hidden, int intermediate, int layers, int heads, int kvHeads,
                                  int maxPositions, boolean tied) {
    if (hidden % heads != 0) throw new IllegalArgumentException("hidden size " + hidden + " is not a multiple of " + heads + " heads");
    return new LlamaConfig("llama", vocab, hidden, intermediate, layers, heads, kvHeads, hidden / heads, maxPositions,
        1e-6, 10000.0, null, tied, false, false, false, 0, 0.02);
  }

  public static LlamaConfig fromJson(Path configJson) { return parse(ConfigJson.read(configJson)); }

  public static LlamaConfig fromJson(String source, JsonNode root) { return parse(new ConfigJson(source, root)); }

  private static LlamaConfig parse(ConfigJson c) {
    String type = c.optString("model_type", "llama");
    if (!MODEL_TYPES.contains(type))
      throw c.error("model_type '" + type + "' is not a LLaMA-family model (expected one of " + MODEL_TYPES + ")");
    String act = c.optString("hidden_act", "silu");
    if (!act.equals("silu")) throw c.error("hidden_act '" + act + "' is not supported (LLaMA-family models use 'silu')");
    int hidden = c.requireInt("hidden_size"), heads = c.requireInt("num_attention_heads");
    int kvHeads = c.optInt("num_key_value_heads", heads);
    if (heads % kvHeads != 0)
      throw c.error("num_attention_heads " + heads + " is not a multiple of num_key_value_heads " + kvHeads);
    if (!c.has("head_dim") && hidden % heads != 0)
      throw c.error("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads + " and head_dim is not given");
    boolean qwen2 = type.equals("qwen2");
    boolean attentionBias = qwen2 || c.optBool("attention_bias", false);
    boolean outputBias = !qwen2 && c.optBool("attention_bias", false);
    int window = 0;
    if (type.equals("mistral") && c.has("sliding_window")) window = c.optInt("sliding_window", 0);
    if (qwen2 && c.optBool("use_sliding_window", false))
      throw c.error("use_sliding_window: true is not supported for qwen2 (its window applies to some layers only)");
    return new LlamaConfig(type, c.requireInt("vocab_size"), hidden, c.requireInt("intermediate_size"),
        c.requireInt("num_hidden_layers"), heads, kvHeads, c.optInt("head_dim", hidden / heads),
        c.optInt("max_position_embeddings", 2048), c.optDouble("rms_norm_eps", 1e-6), c.optDouble("rope_theta", 10000.0),
        ropeScaling(c), c.optBool("tie_word_embeddings", false), attentionBias, outputBias, c.optBool("mlp_bias", false),
        window, c.optDouble("initializer_range", 0.02));
  }

  private static RopeScaling ropeScaling(ConfigJson c) {
    if (!c.has("rope_scaling")) return null;
    JsonNode s = c.root().get("rope_scaling");
    ConfigJson sc = new ConfigJson(c.error("").getMessage() + "rope_scaling", s);
    String type = sc.optString("rope_type", sc.optString("type", "default"));
    return switch (type) {
      case "default" -> null;
      case "linear" -> new RopeScaling(type, sc.optDouble("factor", 1), 0, 0, 0);
      case "llama3" -> new RopeScaling(type, sc.optDouble("factor", 8), sc.optDouble("low_freq_factor", 1),
          sc.optDouble("high_freq_factor", 4), sc.requireInt("original_max_position_embeddings"));
      default -> throw c.error("rope_scaling type '" + type + "' is not supported (supported: default, linear, llama3)");
    };
  }

  /** Rotary inverse frequencies after {@link #ropeScaling}, as Hugging Face's {@code ROPE_INIT_FUNCTIONS} compute them. */
  public double[] ropeInvFreq() {
    double[] f = Rope.invFreq(headDim, ropeTheta);
    if (ropeScaling == null) return f;
    RopeScaling s = ropeScaling;
    if (s.type().equals("linear")) {
      for (int i = 0; i < f.length; i++) f[i] /= s.factor();
      return f;
    }
    double lowWavelen = s.originalMaxPositions() / s.lowFreqFactor();
    double highWavelen = s.originalMaxPositions() / s.highFreqFactor();
    for (int i = 0; i < f.length; i++) {
      double wavelen = 2 * Math.PI / f[i];
      if (wavelen > lowWavelen) {
        f[i] /= s.factor();
      } else if (wavelen >= highWavelen) {
        double smooth = (s.originalMaxPositions() / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
        f[i] = (1 - smooth) * f[i] / s.factor() + smooth * f[i];
      }
    }
    return f;
  }

  public int kvDim() { return numKeyValueHeads * headDim; }

  /** Number of base parameters (a tied head counted once), computed from the shape alone. */
  public long parameterCount() {
    long h = hiddenSize, q = (long) numAttentionHeads * headDim, kv = kvDim(), inter = intermediateSize;
    long attention = h * q + 2 * h * kv + q * h + (attentionBias ? q + 2 * kv : 0) + (outputBias ? h : 0);
    long mlp = 3 * h * inter + (mlpBias ? 2 * inter + h : 0);
    long perLayer = attention + mlp + 2 * h;
    return vocabSize * h + numHiddenLayers * perLayer + h + (tieWordEmbeddings ? 0 : vocabSize * h);
  }

  /** The Hugging Face {@code config.json} for this shape (weights stored as {@code torchDtype}, e.g. "float32"). */
  public ObjectNode toJson(String torchDtype) {
    ObjectNode o = ConfigJson.JSON.createObjectNode();
    String arch = switch (modelType) {
      case "mistral" -> "MistralForCausalLM";
      case "qwen2" -> "Qwen2ForCausalLM";
      default -> "LlamaForCausalLM";
    };
    o.putArray("architectures").add(arch);
    o.put("model_type", modelType);
    o.put("vocab_size", vocabSize);
    o.put("hidden_size", hiddenSize);
    o.put("intermediate_size", intermediateSize);
    o.put("num_hidden_layers", numHiddenLayers);
    o.put("num_attention_heads", numAttentionHeads);
    o.put("num_key_value_heads", numKeyValueHeads);
    if (headDim * numAttentionHeads != hiddenSize) o.put("head_dim", headDim);
    o.put("max_position_embeddings", maxPositionEmbeddings);
    o.put("rms_norm_eps", rmsNormEps);
    o.put("rope_theta", ropeTheta);
    if (ropeScaling != null) {
      ObjectNode s = o.putObject("rope_scaling");
      s.put("rope_type", ropeScaling.type());
      s.put("factor", ropeScaling.factor());
      if (ropeScaling.type().equals("llama3")) {
        s.put("low_freq_factor", ropeScaling.lowFreqFactor());
        s.put("high_freq_factor", ropeScaling.highFreqFactor());
        s.put("original_max_position_embeddings", ropeScaling.originalMaxPositions());
      }
    }
    o.put("tie_word_embeddings", tieWordEmbeddings);
    if (!modelType.equals("qwen2")) o.put("attention_bias", outputBias);
    o.put("mlp_bias", mlpBias);
    if (modelType.equals("mistral") && slidingWindow > 0) o.put("sliding_window", slidingWindow);
    o.put("hidden_act", "silu");
    o.put("initializer_range", initializerRange);
    o.put("torch_dtype", torchDtype);
    return o;
  }
}
