package dev.peftspark.core.peft;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.core.io.HfCheckpoint;
import dev.peftspark.core.io.SafeTensors;
import dev.peftspark.core.model.CausalLm;
import dev.peftspark.core.model.Gpt2Model;
import dev.peftspark.core.nn.Linear;
import dev.peftspark.core.nn.LinearLayer;
import dev.peftspark.core.train.OutputDir;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * PEFT's {@code merge_and_unload} for a {@link CausalLm}: every adapted linear folded into its base weight
 * ({@link AdapterMerge#mergedWeight}), stored under the Hugging Face name in the checkpoint's layout (GPT-2's
 * Conv1D modules transposed back to {@code [in, out]}: PEFT's {@code fan_in_fan_out}), written as a model
 * directory that loads like the base.
 */
public final class CausalMerge {
  private CausalMerge() {}

  private static final String HEAD_WEIGHT = "lm_head.weight";

  /** Files of the base directory copied unchanged beside the merged weights. */
  public static final List<String> COPIED = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
      "generation_config.json", "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json");

  /**
   * The merged model's tensors by Hugging Face name. A tied head stays tied (no {@code lm_head.weight}) unless an
   * adapter wraps it: then the merged head is its own {@code lm_head.weight} and the embeddings stay as they were.
   */
  public static Map<String, INDArray> mergedWeights(CausalLm model) {
    if (model.virtualTokens() > 0)
      throw new IllegalArgumentException("prompt_tuning and prefix_tuning adapters cannot be merged: their virtual tokens"
          + " are inputs to the model, not weights (PEFT defines no merge for prompt learning); use the adapter as it is"
          + " (generate --adapter)");
    Map<String, INDArray> out = new LinkedHashMap<>(model.stateDict());
    List<LinearLayer> linears = new ArrayList<>(model.linears());
    linears.add(model.head());
    for (LinearLayer l : linears) {
      if (l instanceof Linear) continue;   // not adapted: the state dict holds its current values
      String key = l.name() + ".weight";   // an adapted tied head gets its own lm_head.weight: the merge unties it
      if (!out.containsKey(key) && l != model.head())
        throw new IllegalStateException(l.name() + " is adapted but has no tensor '" + key + "' to merge into");
      INDArray w = AdapterMerge.mergedWeight(l);
      out.put(key, model instanceof Gpt2Model && Gpt2Model.isConv1D(l.name()) ? w.transpose().dup('c') : w);
      INDArray bias = AdapterMerge.mergedBias(l);
      if (bias != null) out.put(l.name() + ".bias", bias);
    }
    return out;
  }

  /**
   * Writes {@code out}: {@code config.json} of {@code baseDir} (torch_dtype float32, what is stored;
   * tie_word_embeddings false when the merge untied the head),
   * {@code model.safetensors} with {@link #mergedWeights}, and the tokenizer and generation files of {@link #COPIED}
   * that {@code baseDir} has. Written in a temporary sibling and renamed; an existing non-empty {@code out} is refused.
   */
  public static void write(CausalLm model, Path baseDir, Path out) throws IOException {
    if (Files.exists(out) && !(Files.isDirectory(out) && isEmpty(out)))
      throw new IOException(out + " already exists; choose a new directory for the merged model");
    Path config = baseDir.resolve("config.json");
    if (!Files.isRegularFile(config)) throw new IOException(baseDir + ": no config.json");
    ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    ObjectNode cfg = (ObjectNode) json.readTree(Files.readString(config));
    Map<String, INDArray> weights = mergedWeights(model);
    cfg.put("torch_dtype", "float32");
    if (weights.containsKey(HEAD_WEIGHT)) cfg.put("tie_word_embeddings", false);   // an adapted tied head is untied
    if (Files.isDirectory(out)) Files.delete(out);   // empty, checked above
    OutputDir.writeAtomically(out, tmp -> {
      Files.createDirectories(tmp);
      Files.writeString(tmp.resolve("config.json"), json.writeValueAsString(cfg));
      SafeTensors.write(tmp.resolve(HfCheckpoint.SINGLE), weights, Map.of("format", "pt"));
      for (String name : COPIED) {
        if (Files.isRegularFile(baseDir.resolve(name))) Files.copy(baseDir.resolve(name), tmp.resolve(name));
      }
    });
  }

  private static boolean isEmpty(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.findAny().isEmpty();
    }
  }
}
