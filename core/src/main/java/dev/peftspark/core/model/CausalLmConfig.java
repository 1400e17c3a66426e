package dev.peftspark.core.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.quant.DequantBuffer;
import dev.peftspark.core.quant.QuantizedLinear;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * The shape of a causal LM of either supported family, read from a Hugging Face {@code config.json} by its
 * {@code model_type}: {@code llama}, {@code mistral}, {@code qwen2} or {@code gpt2}. Exactly one field is set.
 */
public record CausalLmConfig(LlamaConfig llama, Gpt2Config gpt2) {
  public CausalLmConfig {
    if ((llama == null) == (gpt2 == null)) throw new IllegalArgumentException("exactly one of llama, gpt2");
  }

  public static CausalLmConfig of(LlamaConfig c) { return new CausalLmConfig(c, null); }

  public static CausalLmConfig of(Gpt2Config c) { return new CausalLmConfig(null, c); }

  /** Reads {@code config.json}; an unsupported {@code model_type} is one error naming the file. */
  public static CausalLmConfig read(Path configJson) {
    ConfigJson c = ConfigJson.read(configJson);
    String type = c.optString("model_type", "");
    if (type.equals("gpt2")) return of(Gpt2Config.fromJson(configJson.toString(), c.root()));
    if (LlamaConfig.MODEL_TYPES.contains(type)) return of(LlamaConfig.fromJson(configJson.toString(), c.root()));
    throw c.error("model_type '" + type + "' is not a supported causal LM (expected gpt2 or one of "
        + LlamaConfig.MODEL_TYPES + ")");
  }

  public boolean isGpt2() { return gpt2 != null; }

  public int vocabSize() { return isGpt2() ? gpt2.vocabSize() : llama.vocabSize(); }

  /** Longest sequence the model takes (GPT-2's learned positions end there; RoPE has no hard limit). */
  public int maxPositions() { return isGpt2() ? gpt2.nPositions() : llama.maxPositionEmbeddings(); }

  /** @param weights by Hugging Face name, or a {@link PackedTensors} (its layer linears stay NF4: frozen only) */
  public CausalLm build(Map<String, INDArray> weights, DataType dtype, boolean trainable) {
    return isGpt2() ? Gpt2Model.fromWeights(gpt2, weights, dtype, trainable)
        : LlamaModel.fromWeights(llama, weights, dtype, trainable);
  }

  /** Hugging Face's initialisation for this shape (what {@code model: random} trains from). */
  public Map<String, INDArray> randomWeights(DataType dtype, long seed) {
    return isGpt2() ? Gpt2Model.randomWeights(gpt2, dtype, seed) : LlamaModel.randomWeights(llama, dtype, seed);
  }

  /** The weights of a Hugging Face model directory (single or sharded safetensors). */
  public static Map<String, INDArray> readWeights(Path dir) throws IOException { return HfCheckpoint.readWeights(dir); }

  /**
   * QLoRA's base from a model directory, read one tensor at a time: each layer linear is quantized to NF4 (double
   * quantization) as it is read and its float copy freed at once, so the float model never exists as a whole;
   * embeddings, norms, biases and {@code lm_head} stay float, as {@code Qlora.quantizeBase} leaves them. The same
   * NF4 bytes as quantizing a model built from {@link #readWeights}.
   */
  public PackedTensors readPacked(Path dir) throws IOException {
    try (HfCheckpoint.Lazy tensors = HfCheckpoint.open(dir)) {
      return packed(tensors);
    } catch (UncheckedIOException e) {
      throw e.getCause();
    }
  }

  /** {@link #randomWeights} (float) as QLoRA's base, each layer linear quantized as it is generated. */
  public PackedTensors randomPacked(long seed) {
    return packed(isGpt2() ? Gpt2Model.randomWeights(gpt2, DataType.FLOAT, seed) : LlamaModel.randomTensors(llama, DataType.FLOAT, seed));
  }

  private PackedTensors packed(Map<String, INDArray> weights) {
    UnaryOperator<LinearLayer> quantize = QuantizedLinear.consuming(new DequantBuffer(DataType.FLOAT));
    return PackedTensors.of(isGpt2() ? Gpt2Model.fromWeights(gpt2, weights, DataType.FLOAT, false, quantize)
        : LlamaModel.fromWeights(llama, weights, DataType.FLOAT, false, quantize));
  }

  public ObjectNode toJson() { return isGpt2() ? gpt2.toJson("float32") : llama.toJson("float32"); }

  /** PEFT's default LoRA targets: q_proj, v_proj (LLaMA family), c_attn (GPT-2). */
  public List<String> defaultLoraTargets() { return isGpt2() ? List.of("c_attn") : List.of("q_proj", "v_proj"); }
}
