package dev.peftspark.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RecordReaderTest {
  @TempDir Path dir;

  private String write(String name, String content) throws IOException {
    Path f = dir.resolve(name);
    Files.writeString(f, content, StandardCharsets.UTF_8);
    return f.toString();
  }

  private static ReaderOptions opts() {
    return ReaderOptions.defaults();
  }

  private static DataFormatException fails(Runnable r) {
    return assertThrows(DataFormatException.class, r::run);
  }

  private static void assertContains(String message, String... parts) {
    for (String p : parts) {
      assertTrue(message.contains(p), () -> "expected '" + p + "' in: " + message);
    }
  }

  @Test
  void jsonlWithIntegerLabelsKeepsLineNumbersAndIgnoresBlankLines() throws IOException {
    String f = write("a.jsonl", "{\"text\":\"good\",\"label\":1}\n\n   \n{\"text\":\"bad\",\"label\":0}\n"
        + "{\"text\":\"meh\",\"label\":2,\"extra\":[1]}");
    ReadResult r = RecordReader.read(List.of(f), opts());
    assertEquals(List.of(new Example("good", 1, f, 1), new Example("bad", 0, f, 4), new Example("meh", 2, f, 5)),
        r.examples());
    assertEquals(0, r.skipped());
    assertEquals(LabelMap.numeric(3), r.labels());
  }

  @Test
  void fileUriAndPlainPathReadTheSame() throws IOException {
    String f = write("a.jsonl", "{\"text\":\"x\",\"label\":0}\n");
    String uri = Path.of(f).toUri().toString();
    assertTrue(uri.startsWith("file:"));
    assertEquals(RecordReader.read(List.of(f), opts()).texts(), RecordReader.read(List.of(uri), opts()).texts());
    assertEquals(uri, RecordReader.read(List.of(uri), opts()).examples().get(0).source());
  }

  @Test
  void severalFilesAreConcatenatedInOrder() throws IOException {
    String a = write("a.jsonl", "{\"text\":\"a1\",\"label\":0}\n{\"text\":\"a2\",\"label\":1}\n");
    String b = write("b.csv", "text,label\nb1,1\n");
    ReadResult r = RecordReader.read(List.of(b, a), opts());
    assertEquals(List.of("b1", "a1", "a2"), r.texts());
    assertEquals(b, r.examples().get(0).source());
    assertEquals(2, r.examples().get(0).recordNumber());
  }

  @Test
  void invalidJsonLineNamesFileAndLine() throws IOException {
    String f = write("bad.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":1}\n{\"text\": oops}\n");
    assertContains(fails(() -> RecordReader.read(List.of(f), opts())).getMessage(),
        f + " line 3", "not valid JSON");
    String g = write("trailing.jsonl", "{\"text\":\"a\",\"label\":0} {\"text\":\"b\",\"label\":0}\n");
    assertContains(fails(() -> RecordReader.read(List.of(g), opts())).getMessage(), g + " line 1");
    String h = write("array.jsonl", "[1,2]\n");
    assertContains(fails(() -> RecordReader.read(List.of(h), opts())).getMessage(),
        h + " line 1", "expected a JSON object");
  }

  @Test
  void missingFieldNamesFieldFileAndTheFieldsPresent() throws IOException {
    String f = write("a.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"sentence\":\"b\",\"label\":1}\n");
    assertContains(fails(() -> RecordReader.read(List.of(f), opts())).getMessage(),
        f + " line 2", "'text'", "[sentence, label]");
    String c = write("a.csv", "sentence,label\nhi,1\n");
    assertContains(fails(() -> RecordReader.read(List.of(c), opts())).getMessage(),
        c + " line 2", "'text'", "[sentence, label]");
    String j = write("a.json", "[{\"text\":\"a\",\"class\":0}]");
    assertContains(fails(() -> RecordReader.read(List.of(j), opts())).getMessage(),
        j + " record 1", "label field 'label'", "[text, class]");
  }

  @Test
  void skipPolicyCountsEmptyTextAndNullLabels() throws IOException {
    String f = write("a.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"\",\"label\":1}\n"
        + "{\"text\":\"  \",\"label\":1}\n{\"text\":null,\"label\":1}\n{\"text\":\"c\",\"label\":null}\n"
        + "{\"text\":\"d\",\"label\":1}\n");
    ReadResult r = RecordReader.read(List.of(f), opts());
    assertEquals(List.of("a", "d"), r.texts());
    assertEquals(4, r.skipped());
  }

  @Test
  void rejectPolicyNamesFileAndLine() throws IOException {
    String f = write("a.jsonl", "{\"text\":\"a\",\"label\":0}\n{\"text\":\"b\",\"label\":null}\n");
    ReaderOptions reject = opts().withPolicy(EmptyRecordPolicy.REJECT);
    assertContains(fails(() -> RecordReader.read(List.of(f), reject)).getMessage(),
        f + " line 2", "null label", "'label'");
    String g = write("b.csv", "text,label\nfine,1\n\"\",0\n");
    assertContains(fails(() -> RecordReader.read(List.of(g), reject)).getMessage(),
        g + " line 3", "empty text");
  }

  @Test
  void stringLabelsAreSortedNamesAndTheTrainMapAppliesToTheTestSet() throws IOException {
    String train = write("train.jsonl", "{\"text\":\"a\",\"y\":\"pos\"}\n{\"text\":\"b\",\"y\":\"neg\"}\n"
        + "{\"text\":\"c\",\"y\":\"neutral\"}\n");
    ReaderOptions o = opts().withFields("text", "y");
    ReadResult tr = RecordReader.read(List.of(train), o);
    assertEquals(List.of("neg", "neutral", "pos"), tr.labels().names());
    assertFalse(tr.labels().numeric());
    assertEquals(List.of(2, 0, 1), tr.examples().stream().map(Example::label).toList());

    // The test set has only "pos": alone it would map pos -> 0; with the train map it must be 2.
    String test = write("test.jsonl", "{\"text\":\"d\",\"y\":\"pos\"}\n");
    assertEquals(0, RecordReader.read(List.of(test), o).examples().get(0).label());
    ReadResult te = RecordReader.read(List.of(test), o.withFixedLabels(tr.labels()));
    assertEquals(2, te.examples().get(0).label());
    assertEquals(tr.labels(), te.labels());

    String unknown = write("test2.jsonl", "{\"text\":\"d\",\"y\":\"pos\"}\n{\"text\":\"e\",\"y\":\"angry\"}\n");
    assertContains(fails(() -> RecordReader.read(List.of(unknown), o.withFixedLabels(tr.labels()))).getMessage(),
        unknown + " line 2", "'angry'", "[neg, neutral, pos]");
  }

  @Test
  void numericTrainMapRejectsOutOfRangeTestLabels() throws IOException {
    String test = write("t.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\",\"label\":3}\n");
    ReaderOptions o = opts().withFixedLabels(LabelMap.numeric(2));
    assertContains(fails(() -> RecordReader.read(List.of(test), o)).getMessage(), test + " line 2", "'3'", "0..1");
  }

  @Test
  void labelsMustBeAllIntegersOrAllNamesAndNotNegativeOrFractional() throws IOException {
    String mixed = write("m.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\",\"label\":\"pos\"}\n");
    assertContains(fails(() -> RecordReader.read(List.of(mixed), opts())).getMessage(),
        "mixes", mixed + " line 1", mixed + " line 2");
    String neg = write("n.jsonl", "{\"text\":\"a\",\"label\":-1}\n");
    assertContains(fails(() -> RecordReader.read(List.of(neg), opts())).getMessage(), neg + " line 1", "negative");
    String frac = write("f.jsonl", "{\"text\":\"a\",\"label\":0.5}\n");
    assertContains(fails(() -> RecordReader.read(List.of(frac), opts())).getMessage(), frac + " line 1", "0.5");
    // Integer-looking strings are class ids (CSV has no types), consistently across formats.
    String quoted = write("q.jsonl", "{\"text\":\"a\",\"label\":\"1\"}\n{\"text\":\"b\",\"label\":0}\n");
    assertEquals(List.of(1, 0), RecordReader.read(List.of(quoted), opts()).examples().stream()
        .map(Example::label).toList());
  }

  @Test
  void jsonArrayIsStreamedWithOneBasedRecordNumbers() throws IOException {
    String f = write("a.json", "[\n {\"text\":\"a\",\"class\":0},\n {\"text\":\"b\",\"class\":1},\n"
        + " {\"text\":\"\",\"class\":null}\n]\n");
    ReaderOptions o = opts().withFields("text", "class");
    ReadResult r = RecordReader.read(List.of(f), o);
    assertEquals(List.of(new Example("a", 0, f, 1), new Example("b", 1, f, 2)), r.examples());
    assertEquals(1, r.skipped());
    assertContains(fails(() -> RecordReader.read(List.of(f), o.withPolicy(EmptyRecordPolicy.REJECT))).getMessage(),
        f + " record 3", "empty text");
  }

  @Test
  void badJsonArraysAreNamed() throws IOException {
    ReaderOptions o = opts();
    String obj = write("o.json", "{\"text\":\"a\",\"label\":0}");
    assertContains(fails(() -> RecordReader.read(List.of(obj), o)).getMessage(), obj, "top-level JSON array");
    String num = write("n.json", "[{\"text\":\"a\",\"label\":0}, 5]");
    assertContains(fails(() -> RecordReader.read(List.of(num), o)).getMessage(), num + " record 2", "a number");
    String broken = write("b.json", "[{\"text\":\"a\",\"label\":0},\n {\"text\":\"b\" \"label\":1}]");
    assertContains(fails(() -> RecordReader.read(List.of(broken), o)).getMessage(),
        broken + " record 2", "line 2", "not valid JSON");
    String open = write("u.json", "[{\"text\":\"a\",\"label\":0}");
    assertContains(fails(() -> RecordReader.read(List.of(open), o)).getMessage(), open);
    String after = write("x.json", "[{\"text\":\"a\",\"label\":0}] []");
    assertContains(fails(() -> RecordReader.read(List.of(after), o)).getMessage(), after, "after the end");
  }

  @Test
  void csvFollowsRfc4180Quoting() throws IOException {
    String f = write("a.csv", "id,text,label\r\n"
        + "1,\"commas, inside\",pos\r\n"
        + "2,\"she said \"\"hi\"\"\",neg\r\n"
        + "\r\n"
        + "3,\"two\nlines\",pos\r\n"
        + "4,plain,neg");
    ReadResult r = RecordReader.read(List.of(f), opts());
    assertEquals(List.of("commas, inside", "she said \"hi\"", "two\nlines", "plain"), r.texts());
    assertEquals(List.of(2L, 3L, 5L, 7L), r.examples().stream().map(Example::recordNumber).toList());
    assertEquals(List.of(1, 0, 1, 0), r.examples().stream().map(Example::label).toList());
  }

  @Test
  void csvErrorsNameFileAndLine() throws IOException {
    String cols = write("c.csv", "text,label\na,1\nb,c,1\n");
    assertContains(fails(() -> RecordReader.read(List.of(cols), opts())).getMessage(),
        cols + " line 3", "expected 2 fields", "found 3");
    String open = write("o.csv", "text,label\na,1\n\"never closed,1\nx,0\n");
    assertContains(fails(() -> RecordReader.read(List.of(open), opts())).getMessage(),
        open + " line 3", "never closed");
    String stray = write("s.csv", "text,label\nab\"c,1\n");
    assertContains(fails(() -> RecordReader.read(List.of(stray), opts())).getMessage(), stray + " line 2", "quote");
    String empty = write("e.csv", "");
    assertContains(fails(() -> RecordReader.read(List.of(empty), opts())).getMessage(), empty, "header");
  }

  @Test
  void autoFormatNeedsAKnownExtensionAndExplicitFormatOverridesIt() throws IOException {
    String f = write("data.txt", "{\"text\":\"a\",\"label\":0}\n");
    assertContains(fails(() -> RecordReader.read(List.of(f), opts())).getMessage(), f, ".jsonl");
    assertEquals(List.of("a"), RecordReader.read(List.of(f), opts().withFormat("jsonl")).texts());
    assertThrows(IllegalArgumentException.class, () -> opts().withFormat("parquet"));
  }

  @Test
  void aDirectoryStandsForItsDataFilesInNameOrder() throws IOException {
    Path sub = Files.createDirectory(dir.resolve("out"));
    Files.writeString(sub.resolve("part-00001.jsonl"), "{\"text\":\"second\",\"label\":0}\n");
    Files.writeString(sub.resolve("part-00000.jsonl"), "{\"text\":\"first\",\"label\":1}\n");
    Files.writeString(sub.resolve("_SUCCESS"), "");
    Files.writeString(sub.resolve(".hidden.jsonl"), "not json");
    assertEquals(List.of("first", "second"), RecordReader.read(List.of(sub.toString()), opts()).texts());
  }

  @Test
  void missingFileIsNamed() {
    String f = dir.resolve("nope.jsonl").toString();
    assertContains(fails(() -> RecordReader.read(List.of(f), opts())).getMessage(), "not found", f);
  }

  @Test
  void allRecordsEmptyIsAnError() throws IOException {
    String f = write("a.jsonl", "{\"text\":\"\",\"label\":0}\n");
    assertContains(fails(() -> RecordReader.read(List.of(f), opts())).getMessage(), "no usable records", "1 skipped");
  }

  @Test
  void invalidUtf8IsNamed() throws IOException {
    Path f = dir.resolve("latin1.jsonl");
    Files.write(f, new byte[] {'{', '"', 't', 'e', 'x', 't', '"', ':', '"', (byte) 0xE9, '"', ',', '"', 'l', 'a',
        'b', 'e', 'l', '"', ':', '0', '}', '\n'});
    assertContains(fails(() -> RecordReader.read(List.of(f.toString()), opts())).getMessage(),
        f.toString(), "UTF-8");
  }

  @Test
  void readTextsKeepsEveryRecordInOrder() throws IOException {
    String f = write("e.jsonl", "{\"body\":\"a\"}\n{\"body\":\"\"}\n{\"body\":null}\n{\"body\":\"d\"}\n");
    assertEquals(List.of("a", "", "", "d"), RecordReader.readTexts(f, "body"));
    assertContains(fails(() -> RecordReader.readTexts(f, "text")).getMessage(), f + " line 1", "'text'", "[body]");
  }
}
