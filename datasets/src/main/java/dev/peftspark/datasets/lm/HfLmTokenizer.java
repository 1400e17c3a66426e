package dev.peftspark.datasets.lm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.datasets.DataFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;

/**
 * The tokenizer of a Hugging Face model directory: {@code tokenizer.json}, with the end-of-text token taken from
 * {@code tokenizer_config.json} ({@code eos_token}, what {@code tokenizer.eos_token_id} gives in Python), else
 * {@code generation_config.json}, else {@code config.json} ({@code eos_token_id}, the first when a list). The
 * document prefix (LLaMA's BOS) is whatever the tokenizer's own post-processor puts before a sequence.
 */
public final class HfLmTokenizer implements LmTokenizer, AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final DjlTokenizer tokenizer;
  private final int eosId;
  private final int vocabSize;
  private final int[] prefixIds;

  private HfLmTokenizer(DjlTokenizer tokenizer, int eosId, int vocabSize) {
    this.tokenizer = tokenizer;
    this.eosId = eosId;
    this.vocabSize = vocabSize;
    this.prefixIds = tokenizer.prefixIds();
  }

  public static HfLmTokenizer load(Path modelDir) {
    Path file = modelDir.resolve("tokenizer.json");
    if (!Files.isRegularFile(file)) {
      throw new DataFormatException("no tokenizer.json in model directory " + modelDir);
    }
    byte[] bytes;
    JsonNode root;
    try {
      bytes = Files.readAllBytes(file);
      root = JSON.readTree(bytes);
    } catch (IOException e) {
      throw new DataFormatException("cannot read " + file + ": " + e.getMessage(), e);
    }
    Map<String, Integer> ids = tokenIds(root, file);
    int vocabSize = ids.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
    if (root.path("model").path("vocab").isArray()) {   // Unigram: [[piece, score], ...], ids are positions
      vocabSize = Math.max(vocabSize, root.path("model").path("vocab").size());
    }
    int eos = eosId(modelDir, ids);
    if (eos < 0 || eos >= vocabSize) {
      throw new DataFormatException(modelDir + ": end-of-text id " + eos + " is outside the tokenizer's "
          + vocabSize + " ids");
    }
    DjlTokenizer tok = new DjlTokenizer(bytes, file.toString());
    return new HfLmTokenizer(tok, eos, vocabSize);
  }

  /** Token text -> id from the model's vocabulary (object form) and the added tokens. */
  private static Map<String, Integer> tokenIds(JsonNode root, Path file) {
    Map<String, Integer> ids = new HashMap<>();
    JsonNode vocab = root.path("model").path("vocab");
    if (vocab.isObject()) {
      for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
        var e = it.next();
        ids.put(e.getKey(), e.getValue().asInt());
      }
    } else if (vocab.isArray()) {
      for (int i = 0; i < vocab.size(); i++) {
        ids.put(vocab.get(i).path(0).asText(), i);
      }
    } else {
      throw new DataFormatException(file + ": no model.vocab (expected a Hugging Face tokenizer.json)");
    }
    for (JsonNode added : root.path("added_tokens")) {
      ids.put(added.path("content").asText(), added.path("id").asInt());
    }
    return ids;
  }

  private static int eosId(Path dir, Map<String, Integer> ids) {
    JsonNode tokenizerConfig = readOptional(dir.resolve("tokenizer_config.json"));
    JsonNode eosToken = tokenizerConfig.path("eos_token");
    String eosText = eosToken.isObject() ? eosToken.path("content").asText(null) : eosToken.asText(null);
    if (eosText != null && !eosToken.isNull()) {
      Integer id = ids.get(eosText);
      if (id == null) {
        throw new DataFormatException(dir.resolve("tokenizer_config.json") + ": eos_token '" + eosText
            + "' is not a token of tokenizer.json");
      }
      return id;
    }
    for (String name : new String[] {"generation_config.json", "config.json"}) {
      JsonNode v = readOptional(dir.resolve(name)).path("eos_token_id");
      if (v.isArray() && !v.isEmpty()) {
        v = v.get(0);
      }
      if (v.isIntegralNumber()) {
        return v.intValue();
      }
      if (!v.isMissingNode() && !v.isNull()) {
        throw new DataFormatException(dir.resolve(name) + ": eos_token_id is " + v + "; expected an integer id");
      }
    }
    throw new DataFormatException(dir + ": no end-of-text token; expected eos_token in tokenizer_config.json or "
        + "eos_token_id in generation_config.json or config.json");
  }

  private static JsonNode readOptional(Path file) {
    if (!Files.isRegularFile(file)) {
      return JSON.missingNode();
    }
    try {
      return JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new DataFormatException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  @Override
  public int[] encode(String text) {
    return tokenizer.encode(text, false);
  }

  @Override
  public String decode(int[] ids) {
    return tokenizer.decode(ids);
  }

  @Override
  public int eosId() {
    return eosId;
  }

  @Override
  public int vocabSize() {
    return vocabSize;
  }

  @Override
  public int[] prefixIds() {
    return prefixIds.clone();
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
