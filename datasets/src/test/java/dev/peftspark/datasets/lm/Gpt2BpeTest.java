package dev.peftspark.datasets.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.peftspark.datasets.DataFormatException;
import dev.peftspark.datasets.DemoData;
import dev.peftspark.datasets.TestFiles;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Gpt2BpeTest {
  private static Gpt2Bpe bpe;

  @BeforeAll
  static void load() {
    TestFiles.useOfflineDemoCache();
    bpe = Gpt2Bpe.demo();
  }

  @AfterAll
  static void close() {
    bpe.close();
  }

  /** Ids made by the JavaScript encoder of gpt-3-encoder (src/test/node/make-gpt2-fixture.js). */
  @Test
  void idsEqualTheIndependentJavaScriptReference() throws IOException {
    JsonNode fixture;
    try (InputStream in = Gpt2BpeTest.class.getResourceAsStream("/lm/gpt2-fixture.json")) {
      fixture = new ObjectMapper().readTree(in);
    }
    assertEquals(50, fixture.size());
    List<String> mismatches = new ArrayList<>();
    for (JsonNode row : fixture) {
      String text = row.get("text").asText();
      int[] expected = new int[row.get("ids").size()];
      for (int i = 0; i < expected.length; i++) {
        expected[i] = row.get("ids").get(i).intValue();
      }
      int[] actual = bpe.encode(text);
      if (!java.util.Arrays.equals(expected, actual)) {
        mismatches.add(text + ": expected " + java.util.Arrays.toString(expected) + ", got "
            + java.util.Arrays.toString(actual));
      }
      assertEquals(text, bpe.decode(actual));
    }
    assertEquals(List.of(), mismatches);
  }

  @Test
  void knownFacts() {
    assertArrayEquals(new int[] {15496, 995}, bpe.encode("Hello world"));
    assertEquals(50257, bpe.vocabSize());
    assertEquals(50256, bpe.eosId());
    assertArrayEquals(new int[0], bpe.prefixIds());
    assertArrayEquals(new int[0], bpe.encode(""));
    assertEquals("<|endoftext|>", bpe.decode(new int[] {50256}));
    // The end-of-text token in text is the special token, as in Hugging Face's GPT2TokenizerFast.
    assertArrayEquals(new int[] {15496, 50256}, bpe.encode("Hello<|endoftext|>"));
  }

  @Test
  void decodeInvertsEncodeOnAwkwardText() {
    for (String s : List.of("  x  ", "\n\n\n", "a\u0000b", "🙂 ok", "x\u0301y", "tab\t\t", "'S 'sT 'LL")) {
      assertEquals(s, bpe.decode(bpe.encode(s)), s);
    }
  }

  @Test
  void badFilesNameTheFileAndLine(@TempDir Path dir) throws IOException {
    Path real = DemoData.gpt2Encoder();
    Files.copy(real.resolve("encoder.json"), dir.resolve("encoder.json"));
    Files.writeString(dir.resolve("vocab.bpe"), "#version: 0.2\nĠ t\nĠa\n");
    var e = assertThrows(DataFormatException.class, () -> Gpt2Bpe.load(dir));
    assertTrue(e.getMessage().contains("vocab.bpe line 3"), e.getMessage());

    Files.writeString(dir.resolve("encoder.json"), "{\"a\": 0, \"b\": 0}");
    e = assertThrows(DataFormatException.class, () -> Gpt2Bpe.load(dir));
    assertTrue(e.getMessage().contains("encoder.json") && e.getMessage().contains("\"b\""), e.getMessage());

    Files.writeString(dir.resolve("encoder.json"), "{\"a\": 0, \"b\": 1}");
    Files.writeString(dir.resolve("vocab.bpe"), "#version: 0.2\na b\n");
    e = assertThrows(DataFormatException.class, () -> Gpt2Bpe.load(dir));
    assertTrue(e.getMessage().contains("<|endoftext|>"), e.getMessage());
  }
}
