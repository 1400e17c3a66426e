package dev.peftspark.datasets;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class TextTokenizerTest {
  private static TextTokenizer tok;

  @BeforeAll
  static void load() {
    tok = new TextTokenizer(TestFiles.miniLmTokenizer());
  }

  @AfterAll
  static void close() {
    tok.close();
  }

  @Test
  void knownBertUncasedIds() {
    assertArrayEquals(new int[] {101, 7592, 2088, 102}, tok.encode("hello world", 128));
    // Lower-casing and WordPiece: "Tokenization" -> token ##ization.
    assertArrayEquals(new int[] {101, 19204, 3989, 102}, tok.encode("Tokenization", 128));
    assertEquals(List.of("[CLS]", "token", "##ization", "[SEP]"), tok.tokens("Tokenization"));
    assertArrayEquals(new int[] {101, 102}, tok.encode("", 128));
  }

  @Test
  void noPaddingLengthsFollowTheText() {
    // tokenizer.json asks for fixed padding to 128; that must be switched off.
    Encoding e = tok.encode(List.of("hi", "hello world", "a rather longer sentence than the others"), 128);
    assertEquals(3, e.size());
    assertEquals(3, e.ids(0).length);
    assertEquals(4, e.ids(1).length);
    assertEquals(0, e.truncated());
    assertTrue(e.ids(2).length > 4);
  }

  @Test
  void truncationKeepsClsAndSep() {
    String text = "one two three four five six seven eight nine ten";
    int[] full = tok.encode(text, 512);
    assertEquals(12, full.length);
    Encoding e = tok.encode(List.of(text, "hello world"), 6);
    assertEquals(1, e.truncated());
    assertArrayEquals(new int[] {101, full[1], full[2], full[3], full[4], 102}, e.ids(0));
    assertArrayEquals(new int[] {101, 7592, 2088, 102}, e.ids(1));
    // Exactly maxLength is not truncated.
    assertEquals(0, tok.encode(List.of(text), 12).truncated());
    assertArrayEquals(full, tok.encode(text, 12));
    assertThrows(IllegalArgumentException.class, () -> tok.encode("x", 1));
  }

  @Test
  void batchEncodingEqualsOneByOne() {
    List<String> texts = List.of("The movie was great!", "", "Worst. Phone. Ever.", "naïve café ünïcödé");
    Encoding batch = tok.encode(texts, 16);
    for (int i = 0; i < texts.size(); i++) {
      assertArrayEquals(tok.encode(texts.get(i), 16), batch.ids(i), texts.get(i));
    }
  }

  @Test
  void missingTokenizerFileIsNamed() {
    Path p = Path.of("/nonexistent/tokenizer.json");
    var e = assertThrows(DataFormatException.class, () -> new TextTokenizer(p));
    assertTrue(e.getMessage().contains(p.toString()), e.getMessage());
  }

  @Test
  void djlIsOffline() {
    assertEquals("true", System.getProperty("ai.djl.offline"));
  }
}
