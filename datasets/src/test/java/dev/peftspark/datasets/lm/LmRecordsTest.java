package dev.peftspark.datasets.lm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peftspark.datasets.DataFormatException;
import dev.peftspark.datasets.TestFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LmRecordsTest {
  private static final int EOS = 50256;
  private static Gpt2Bpe bpe;
  @TempDir Path dir;

  @BeforeAll
  static void load() {
    TestFiles.useOfflineDemoCache();
    bpe = Gpt2Bpe.demo();
  }

  @AfterAll
  static void close() {
    bpe.close();
  }

  private String write(String name, String content) throws IOException {
    Path f = dir.resolve(name);
    Files.writeString(f, content);
    return f.toString();
  }

  private static int[] withEos(int[] ids) {
    int[] out = Arrays.copyOf(ids, ids.length + 1);
    out[ids.length] = EOS;
    return out;
  }

  private static String failure(Runnable r) {
    return assertThrows(DataFormatException.class, r::run).getMessage();
  }

  @Test
  void textRecordsAreDocumentsEndingInEosWithEveryTokenATarget() throws IOException {
    String f = write("docs.jsonl", "{\"text\": \"Hello world\"}\n{\"text\": null}\n{\"text\": \"  \"}\n"
        + "{\"text\": \"It's 1961.\"}\n");
    List<LmExample> ex = LmRecords.read(List.of(f), LmDataOptions.defaults(), bpe);
    assertEquals(2, ex.size());
    assertArrayEquals(new int[] {15496, 995, EOS}, ex.get(0).ids());
    assertArrayEquals(ex.get(0).ids(), ex.get(0).labels());
    assertArrayEquals(withEos(bpe.encode("It's 1961.")), ex.get(1).ids());
    assertEquals(3, ex.get(0).targets());
  }

  @Test
  void plainTextIsOneDocumentPerLineOrPerFile() throws IOException {
    String f = write("corpus.txt", "first line\n\nsecond line\n");
    List<LmExample> lines = LmRecords.read(List.of(f), LmDataOptions.defaults(), bpe);
    assertEquals(2, lines.size());
    assertEquals("first line<|endoftext|>", bpe.decode(lines.get(0).ids()));
    assertEquals("second line<|endoftext|>", bpe.decode(lines.get(1).ids()));
    List<LmExample> whole = LmRecords.read(List.of(f), LmDataOptions.defaults().withPerFile(true), bpe);
    assertEquals(1, whole.size());
    assertEquals("first line\n\nsecond line<|endoftext|>", bpe.decode(whole.get(0).ids()));
    // A file without the .txt extension is plain text when the file format says so.
    String g = write("corpus.dat", "only line\n");
    assertEquals(1, LmRecords.read(List.of(g), LmDataOptions.defaults().withFileFormat("txt"), bpe).size());
    Files.write(dir.resolve("bad.txt"), new byte[] {'o', 'k', '\n', (byte) 0xC3, '(', '\n'});
    String msg = failure(() -> LmRecords.read(List.of(dir.resolve("bad.txt").toString()), LmDataOptions.defaults(), bpe));
    assertTrue(msg.endsWith("bad.txt line 2: not valid UTF-8 text"), msg);
  }

  @Test
  void brownDemoDocumentsAreTextExamples() {
    List<LmExample> ex = LmRecords.read(List.of("demo:brown?genres=humor"), LmDataOptions.defaults(), bpe);
    assertEquals(9, ex.size());
    List<BrownCorpus.Document> docs = BrownCorpus.fromUri("demo:brown?genres=humor");
    for (int i = 0; i < 9; i++) {
      int[] ids = ex.get(i).ids();
      assertEquals(EOS, ids[ids.length - 1]);
      assertEquals(docs.get(i).text(), bpe.decode(Arrays.copyOf(ids, ids.length - 1)));
      assertTrue(ids.length > 512, "packing keeps whole documents: " + ids.length);
    }
  }

  @Test
  void instructionsTakeLossOnlyOnTheResponseAndEos() throws IOException {
    String f = write("sft.jsonl", "{\"prompt\": \"Name a colour.\", \"response\": \"Blue, like the sky.\"}\n");
    LmExample ex = LmRecords.read(List.of(f), LmDataOptions.defaults().withFormat("instruction"), bpe).get(0);
    String promptText = "### Instruction:\nName a colour.\n\n### Response:\n";
    int[] promptIds = bpe.encode(promptText);
    assertArrayEquals(withEos(bpe.encode(promptText + "Blue, like the sky.")), ex.ids());
    for (int t = 0; t < ex.length(); t++) {
      assertEquals(t < promptIds.length ? LmExample.IGNORE : ex.ids()[t], ex.labels()[t], "position " + t);
    }
    assertEquals("Blue, like the sky.<|endoftext|>",
        bpe.decode(Arrays.copyOfRange(ex.ids(), promptIds.length, ex.length())));
  }

  @Test
  void instructionFieldsAndTemplateAreConfigurable() throws IOException {
    String f = write("sft.csv", "question,answer\nWhat is 2+2?,4\n");
    LmDataOptions opts = LmDataOptions.defaults().withFormat("instruction").withFields("text", "question", "answer")
        .withTemplate("Q: {prompt}\nA:");
    LmExample ex = LmRecords.read(List.of(f), opts, bpe).get(0);
    int promptLen = bpe.encode("Q: What is 2+2?\nA:").length;
    assertArrayEquals(withEos(bpe.encode("Q: What is 2+2?\nA:4")), ex.ids());
    assertEquals(2, ex.targets());   // "4" and EOS
    assertEquals(LmExample.IGNORE, ex.labels()[promptLen - 1]);
    String msg = failure(() -> LmRecords.read(List.of(f), LmDataOptions.defaults().withFormat("instruction"), bpe));
    assertTrue(msg.endsWith("sft.csv line 2: no field 'prompt'; the record has fields [question, answer]"), msg);
    String g = write("nulls.jsonl", "{\"prompt\": \"p\", \"response\": \"r\"}\n{\"prompt\": \"p\", \"response\": null}\n");
    msg = failure(() -> LmRecords.read(List.of(g), LmDataOptions.defaults().withFormat("instruction"), bpe));
    assertTrue(msg.endsWith("nulls.jsonl line 2: field 'response' holds null, expected text"), msg);
  }

  @Test
  void aBosPrefixIsAddedAndNeverATargetInAnInstruction(@TempDir Path model) throws IOException {
    Files.writeString(model.resolve("tokenizer.json"), HfLmTokenizerTest.TOKENIZER_JSON);
    Files.writeString(model.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
    try (HfLmTokenizer tok = HfLmTokenizer.load(model)) {
      LmExample doc = LmRecords.document("the cat sat", tok);
      assertArrayEquals(new int[] {1, 3, 4, 5, 2}, doc.ids());
      assertArrayEquals(doc.ids(), doc.labels());
      LmExample ins = LmRecords.instruction("the cat", "sat", "{prompt} a ", tok);
      assertArrayEquals(new int[] {1, 3, 4, 6, 5, 2}, ins.ids());
      assertArrayEquals(new int[] {-100, -100, -100, -100, 5, 2}, ins.labels());
    }
  }

  @Test
  void tokenizedRecordsAreCheckedAgainstTheVocabulary() throws IOException {
    String f = write("tok.jsonl", "{\"input_ids\": [5, 6, 7]}\n{\"input_ids\": [1, 2, 3], \"labels\": [-100, 2, 3]}\n");
    List<LmExample> ex = LmRecords.readTokenized(List.of(f), LmDataOptions.defaults(), 10);
    assertArrayEquals(new int[] {5, 6, 7}, ex.get(0).labels());
    assertArrayEquals(new int[] {-100, 2, 3}, ex.get(1).labels());
    LmDataOptions opts = LmDataOptions.defaults().withFormat("tokenized");
    assertEquals(2, LmRecords.read(List.of(f), opts, bpe).size());

    String[][] bad = {
        {"{\"input_ids\": [1, 10]}", "line 1: field 'input_ids' element 1 is 10; expected a token id in 0..9"},
        {"{\"input_ids\": [1, -100]}", "line 1: field 'input_ids' element 1 is -100; expected a token id in 0..9"},
        {"{\"input_ids\": [1, 2.5]}", "line 1: field 'input_ids' element 1 is 2.5; expected a token id in 0..9"},
        {"{\"input_ids\": \"1 2\"}", "line 1: field 'input_ids' holds \"1 2\"; expected an array of integer token ids"},
        {"{\"input_ids\": []}", "line 1: field 'input_ids' is empty"},
        {"{\"ids\": [1]}", "line 1: no field 'input_ids'; the record has fields [ids]"},
        {"{\"input_ids\": [1, 2], \"labels\": [1]}",
            "line 1: field 'labels' has 1 entries but 'input_ids' has 2; they must be aligned"},
        {"{\"input_ids\": [1, 2], \"labels\": [-1, 2]}",
            "line 1: field 'labels' element 0 is -1; expected -100 or a token id in 0..9"},
    };
    for (String[] c : bad) {
      String g = write("bad.jsonl", c[0] + "\n");
      String msg = failure(() -> LmRecords.readTokenized(List.of(g), LmDataOptions.defaults(), 10));
      assertEquals(g + " " + c[1], msg);
    }
  }

  @Test
  void withoutPackingExamplesAreTruncatedAndPromptOnlyOnesDropped() throws IOException {
    String f = write("tok.jsonl", "{\"input_ids\": [1, 2, 3, 4, 5, 6]}\n"
        + "{\"input_ids\": [1, 2, 3, 4, 5], \"labels\": [-100, -100, -100, -100, 5]}\n{\"input_ids\": [7]}\n");
    LmDataOptions pad = LmDataOptions.defaults().withMaxLength(4).withPacking(false);
    List<LmExample> ex = LmRecords.readTokenized(List.of(f), pad, 10);
    assertEquals(2, ex.size());
    assertArrayEquals(new int[] {1, 2, 3, 4}, ex.get(0).ids());
    assertArrayEquals(new int[] {7}, ex.get(1).ids());
    List<LmExample> packed = LmRecords.readTokenized(List.of(f), pad.withPacking(true), 10);
    assertEquals(3, packed.size());
    assertEquals(6, packed.get(0).length());
  }

  @Test
  void optionsRejectBadValues() {
    assertThrows(IllegalArgumentException.class, () -> LmDataOptions.defaults().withFormat("chat"));
    assertThrows(IllegalArgumentException.class, () -> LmDataOptions.defaults().withTemplate("no placeholder"));
    assertThrows(IllegalArgumentException.class, () -> LmDataOptions.defaults().withMaxLength(1));
    assertThrows(IllegalArgumentException.class, () -> LmDataOptions.defaults().withFileFormat("parquet"));
  }
}
