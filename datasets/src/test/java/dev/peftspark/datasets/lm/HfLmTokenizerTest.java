package dev.peftspark.datasets.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peftspark.datasets.DataFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfLmTokenizerTest {
  /** A LLaMA-like tokenizer in miniature: word-level vocabulary, BOS added by the post-processor. */
  static final String TOKENIZER_JSON = """
      {"version": "1.0", "truncation": null, "padding": null,
       "added_tokens": [
         {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
         {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
         {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
       "normalizer": null,
       "pre_tokenizer": {"type": "WhitespaceSplit"},
       "post_processor": {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
       "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": false},
       "model": {"type": "WordLevel", "unk_token": "<unk>",
         "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "the": 3, "cat": 4, "sat": 5, "a": 6}}}
      """;

  private static Path modelDir(Path dir, String tokenizerConfig, String generationConfig, String config)
      throws IOException {
    Files.writeString(dir.resolve("tokenizer.json"), TOKENIZER_JSON);
    if (tokenizerConfig != null) {
      Files.writeString(dir.resolve("tokenizer_config.json"), tokenizerConfig);
    }
    if (generationConfig != null) {
      Files.writeString(dir.resolve("generation_config.json"), generationConfig);
    }
    if (config != null) {
      Files.writeString(dir.resolve("config.json"), config);
    }
    return dir;
  }

  @Test
  void encodesWithoutSpecialTokensAndReportsTheBosPrefix(@TempDir Path dir) throws IOException {
    try (HfLmTokenizer tok = HfLmTokenizer.load(modelDir(dir, "{\"eos_token\": \"</s>\"}", null, null))) {
      assertArrayEquals(new int[] {3, 4, 5}, tok.encode("the cat sat"));
      assertArrayEquals(new int[] {3, 0}, tok.encode("the dog"));
      assertArrayEquals(new int[] {1}, tok.prefixIds());
      assertEquals(2, tok.eosId());
      assertEquals(7, tok.vocabSize());
      assertEquals("the cat sat", tok.decode(new int[] {3, 4, 5}));
    }
  }

  @Test
  void eosComesFromTokenizerConfigThenGenerationConfigThenConfig(@TempDir Path dir) throws IOException {
    Path a = Files.createDirectory(dir.resolve("a"));
    try (HfLmTokenizer tok = HfLmTokenizer.load(modelDir(a,
        "{\"eos_token\": {\"content\": \"</s>\", \"special\": true}}", "{\"eos_token_id\": 5}", null))) {
      assertEquals(2, tok.eosId());
    }
    Path b = Files.createDirectory(dir.resolve("b"));
    try (HfLmTokenizer tok = HfLmTokenizer.load(modelDir(b, "{}", "{\"eos_token_id\": [5, 2]}",
        "{\"eos_token_id\": 4}"))) {
      assertEquals(5, tok.eosId());
    }
    Path c = Files.createDirectory(dir.resolve("c"));
    try (HfLmTokenizer tok = HfLmTokenizer.load(modelDir(c, null, null, "{\"eos_token_id\": 4}"))) {
      assertEquals(4, tok.eosId());
    }
  }

  @Test
  void missingOrBadEosIsOneClearError(@TempDir Path dir) throws IOException {
    Path a = Files.createDirectory(dir.resolve("a"));
    var e = assertThrows(DataFormatException.class, () -> HfLmTokenizer.load(modelDir(a, null, null, "{}")));
    assertTrue(e.getMessage().contains("no end-of-text token"), e.getMessage());
    Path b = Files.createDirectory(dir.resolve("b"));
    e = assertThrows(DataFormatException.class,
        () -> HfLmTokenizer.load(modelDir(b, "{\"eos_token\": \"<eos>\"}", null, null)));
    assertTrue(e.getMessage().contains("tokenizer_config.json") && e.getMessage().contains("'<eos>'"),
        e.getMessage());
    Path c = Files.createDirectory(dir.resolve("c"));
    e = assertThrows(DataFormatException.class,
        () -> HfLmTokenizer.load(modelDir(c, null, null, "{\"eos_token_id\": 99}")));
    assertTrue(e.getMessage().contains("99"), e.getMessage());
    e = assertThrows(DataFormatException.class, () -> HfLmTokenizer.load(dir.resolve("missing")));
    assertTrue(e.getMessage().contains("no tokenizer.json"), e.getMessage());
  }

  @Test
  void gpt2sTokenizerJsonGivesTheSameIdsAsGpt2Bpe(@TempDir Path dir) throws IOException {
    dev.peftspark.datasets.TestFiles.useOfflineDemoCache();
    Path folder = dev.peftspark.datasets.DemoData.gpt2Encoder();
    var mapper = new com.fasterxml.jackson.databind.ObjectMapper();
    var vocab = (com.fasterxml.jackson.databind.node.ObjectNode) mapper.readTree(folder.resolve("encoder.json").toFile());
    var merges = mapper.createArrayNode();
    Files.readAllLines(folder.resolve("vocab.bpe")).stream().skip(1).filter(l -> !l.isEmpty()).forEach(merges::add);
    Files.write(dir.resolve("tokenizer.json"), Gpt2Bpe.tokenizerJson(vocab, merges, 50256));
    Files.writeString(dir.resolve("config.json"), "{\"eos_token_id\": 50256}");
    try (HfLmTokenizer tok = HfLmTokenizer.load(dir); Gpt2Bpe bpe = Gpt2Bpe.load(folder)) {
      assertEquals(50257, tok.vocabSize());
      assertEquals(50256, tok.eosId());
      assertArrayEquals(new int[0], tok.prefixIds());
      String text = "It's 1961: the jury said \"no evidence\" — naïve.";
      assertArrayEquals(bpe.encode(text), tok.encode(text));
    }
  }
}
