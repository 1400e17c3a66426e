package dev.peftspark.spark.job;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.core.generate.Generator;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.CausalLora;
import dev.peftspark.core.peft.CausalMerge;
import dev.peftspark.core.peft.LmAdapterFiles;
import dev.peftspark.datasets.lm.HfLmTokenizer;
import org.nd4j.linalg.api.buffer.DataType;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The {@code generate} command and {@code merge} on a Hugging Face causal-LM directory (LLaMA family, GPT-2). */
public final class CausalLmTools {
  private static final Logger log = LoggerFactory.getLogger(CausalLmTools.class);
  private static final DataType DTYPE = DataType.FLOAT;

  private CausalLmTools() {}

  /** True when {@code model} names a directory whose config.json is a causal LM this project runs. */
  public static boolean isCausalLmDir(String model) {
    Path config = Path.of(model).resolve("config.json");
    if (!Files.isRegularFile(config)) return false;
    try {
      String type = new ObjectMapper().readTree(config.toFile()).path("model_type").asText();
      return type.equals("gpt2") || LlamaConfig.MODEL_TYPES.contains(type);
    } catch (IOException e) {
      return false;   // reported by whichever loader reads it
    }
  }

  /**
   * The base model of {@code modelDir} with the adapter of {@code adapter} (may be null): one saved by this project
   * ({@code peft_spark.json}: LoRA, DoRA, QLoRA, IA3, full), or a plain PEFT LoRA/DoRA/IA3 directory.
   */
  public static CausalLm load(Path modelDir, Path adapter) throws IOException {
    if (adapter != null && Files.isRegularFile(adapter.resolve(AdapterFiles.EXTRA)))
      return LmAdapterFiles.load(adapter, trainable -> build(modelDir, trainable), DTYPE).model();
    CausalLm model = CausalLm.load(modelDir, DTYPE, false);
    if (adapter != null) CausalLora.load(adapter, model, DTYPE);
    return model;
  }

  private static CausalLm build(Path modelDir, boolean trainable) {
    try {
      return CausalLm.load(modelDir, DTYPE, trainable);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** A generated continuation, decoded, and how the decoding went. */
  public record Generated(String text, Generator.Result result) {}

  public static Generated generate(Path modelDir, Path adapter, String prompt, Generator.Settings settings) throws IOException {
    CausalLm model = load(modelDir, adapter);
    try (HfLmTokenizer tok = HfLmTokenizer.load(modelDir)) {
      if (tok.vocabSize() > model.vocabSize())
        throw new IllegalArgumentException(modelDir + ": tokenizer.json has " + tok.vocabSize() + " ids, the model only "
            + model.vocabSize() + " (vocab_size)");
      int[] text = tok.encode(prompt), prefix = tok.prefixIds();
      int[] ids = new int[prefix.length + text.length];
      System.arraycopy(prefix, 0, ids, 0, prefix.length);
      System.arraycopy(text, 0, ids, prefix.length, text.length);
      Generator.Settings s = new Generator.Settings(settings.maxNewTokens(), settings.temperature(), settings.topP(),
          settings.seed(), tok.eosId());
      Generator.Result r = Generator.generate(model, ids, s);
      log.info("generated {} tokens after a {}-token prompt ({}), prefill {} ms, decoding {} ms", r.tokens().length,
          r.promptTokens(), r.stop(), r.prefillNanos() / 1_000_000, r.decodeNanos() / 1_000_000);
      return new Generated(tok.decode(r.tokens()), r);
    }
  }

  public static void merge(Path modelDir, Path adapter, Path out) throws IOException {
    CausalLm model = load(modelDir, adapter);
    CausalMerge.write(model, modelDir, out);
    log.info("merged {} into {} (base {})", adapter, out, modelDir);
  }
}
