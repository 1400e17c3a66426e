package dev.peftspark.datasets.lm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.peftspark.datasets.DataFormatException;
import dev.peftspark.datasets.DemoData;
import dev.peftspark.datasets.ReaderOptions;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.datasets.TestFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BrownCorpusTest {
  private static List<BrownCorpus.Document> docs;

  @BeforeAll
  static void read() {
    TestFiles.useOfflineDemoCache();
    docs = BrownCorpus.demo();
  }

  @Test
  void fiveHundredDocumentsInFifteenGenresWithTheKnownCounts() {
    assertEquals(500, docs.size());
    Map<String, Long> counts = docs.stream()
        .collect(Collectors.groupingBy(BrownCorpus.Document::genre, TreeMap::new, Collectors.counting()));
    // The corpus manual's numbers of samples per category (NLTK's brown.fileids(category) agree).
    Map<String, Long> expected = new TreeMap<>(Map.ofEntries(Map.entry("news", 44L), Map.entry("editorial", 27L),
        Map.entry("reviews", 17L), Map.entry("religion", 17L), Map.entry("hobbies", 36L), Map.entry("lore", 48L),
        Map.entry("belles_lettres", 75L), Map.entry("government", 30L), Map.entry("learned", 80L),
        Map.entry("fiction", 29L), Map.entry("mystery", 24L), Map.entry("science_fiction", 6L),
        Map.entry("adventure", 29L), Map.entry("romance", 29L), Map.entry("humor", 9L)));
    assertEquals(expected, counts);
    assertEquals("ca01", docs.get(0).id());
    assertEquals("cr09", docs.get(499).id());
  }

  @Test
  void tagsAreStrippedAndEverySlashLeftBelongsToAWord() throws IOException {
    Path folder = DemoData.brownCorpus();
    long slashesInWords = 0;
    for (BrownCorpus.Document d : docs) {
      for (String token : Files.readString(folder.resolve(d.id())).split("\\s+")) {
        if (!token.isEmpty()) {
          slashesInWords += token.chars().filter(c -> c == '/').count() - 1;   // all but the tag's slash
        }
      }
    }
    long slashesInText = docs.stream().mapToLong(d -> d.text().chars().filter(c -> c == '/').count()).sum();
    assertEquals(slashesInWords, slashesInText);
    Pattern tag = Pattern.compile("/(at|nn|nns|np|in|vbd|jj|cc|rb|pps|nn-tl|np-hl)(\\s|$)");
    List<String> left = docs.stream().flatMap(d -> tag.matcher(d.text()).results()
        .map(m -> d.id() + ": " + d.text().substring(Math.max(0, m.start() - 20), m.end()))).toList();
    assertEquals(List.of(), left);
  }

  @Test
  void textIsDetokenizedWithParagraphs() {
    String ca01 = docs.get(0).text();
    assertTrue(ca01.startsWith("The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
        + "election produced \"no evidence\" that any irregularities took place.\n\nThe jury further said in "
        + "term-end presentments that the City Executive Committee, which had over-all charge of the election, "
        + "\"deserves the praise and thanks of the City of Atlanta\" for the manner"), ca01.substring(0, 300));
    // Inch marks are words of the corpus, not quotes.
    assertTrue(docs.stream().filter(d -> d.id().equals("ce01")).findFirst().orElseThrow().text()
        .contains("he was only 4' 10''\" tall"));
    // ck01 starts with a headline on its own line, then a paragraph of three sentences.
    String ck01 = docs.stream().filter(d -> d.id().equals("ck01")).findFirst().orElseThrow().text();
    assertTrue(ck01.startsWith("Thirty-three\nScotty did not go back to school. His parents talked"), ck01.substring(0, 80));
    for (BrownCorpus.Document d : docs) {
      for (String bad : List.of("``", " '' ", " ,", " .", "\n\n\n")) {
        int at = d.text().indexOf(bad);
        assertEquals(-1, at, () -> d.id() + ": " + d.text().substring(Math.max(0, at - 30), at + 10));
      }
      assertFalse(d.text().isBlank(), d.id());
    }
  }

  @Test
  void detokenizeHandlesQuotesAndBrackets() {
    assertEquals("He said, \"No (really) 'so'.\" Then -- nothing!",
        BrownCorpus.detokenize(List.of("He", "said", ",", "``", "No", "(", "really", ")", "'", "so", "'", ".", "''",
            "Then", "--", "nothing", "!")));
  }

  @Test
  void selectionByGenresAndExclusion() {
    assertEquals(80, BrownCorpus.select(docs, Set.of("learned"), Set.of()).size());
    assertEquals(500 - 80 - 9, BrownCorpus.select(docs, Set.of(), Set.of("learned", "humor")).size());
    assertEquals(44 + 27, BrownCorpus.fromUri("demo:brown?genres=news,editorial").size());
    assertEquals(500 - 80 - 9, BrownCorpus.fromUri("demo:brown?exclude=learned,humor").size());
    assertEquals(500, BrownCorpus.fromUri("demo:brown").size());
    var e = assertThrows(DataFormatException.class, () -> BrownCorpus.fromUri("demo:brown?genres=poetry"));
    assertTrue(e.getMessage().contains("'poetry' is not a Brown genre") && e.getMessage().contains("learned"),
        e.getMessage());
    e = assertThrows(DataFormatException.class, () -> BrownCorpus.fromUri("demo:brown?genre=news&only=x"));
    assertTrue(e.getMessage().contains("unknown parameter 'only'"), e.getMessage());
    e = assertThrows(DataFormatException.class, () -> BrownCorpus.fromUri("demo:brown?genres=news&exclude=news"));
    assertTrue(e.getMessage().contains("selects no documents"), e.getMessage());
  }

  @Test
  void trainAndTestSplitsPartitionEveryGenre() {
    List<BrownCorpus.Document> train = BrownCorpus.fromUri("demo:brown?genres=learned&split=train");
    List<BrownCorpus.Document> test = BrownCorpus.fromUri("demo:brown?split=test&genres=learned");
    assertEquals(64, train.size());
    assertEquals(16, test.size());
    assertEquals(List.of("cj05", "cj10", "cj15"), test.subList(0, 3).stream().map(BrownCorpus.Document::id).toList());
    assertTrue(train.stream().noneMatch(test::contains));
    // floor(n / 5) per genre: 8+5+3+3+7+9+15+6+16+5+4+1+5+5+1
    assertEquals(93, BrownCorpus.fromUri("demo:brown?split=test").size());
    assertEquals(1, BrownCorpus.fromUri("demo:brown?genres=humor&split=test").size());
    assertEquals(500 - 80 - (93 - 16), BrownCorpus.fromUri("demo:brown?exclude=learned&split=train").size());
    var e = assertThrows(DataFormatException.class, () -> BrownCorpus.fromUri("demo:brown?split=dev"));
    assertTrue(e.getMessage().contains("split must be train or test"), e.getMessage());
  }

  @Test
  void demoUriIsReadableAsRecordsWithGenreLabels() {
    var result = RecordReader.read(List.of("demo:brown?genres=humor,science_fiction"),
        ReaderOptions.defaults().withFields("text", "genre"));
    assertEquals(15, result.examples().size());
    assertEquals(List.of("humor", "science_fiction"), result.labels().names());
    assertEquals(docs.stream().filter(d -> d.id().equals("cm01")).findFirst().orElseThrow().text(),
        result.texts().get(0));
    assertEquals(15, RecordReader.readTexts("demo:brown?genres=humor,science_fiction", "text").size());
  }

  @Test
  void malformedTokenNamesFileAndLine(@TempDir Path dir) throws IOException {
    Files.writeString(dir.resolve("ca01"), "\n\tThe/at jury/nn\n\tsaid ./.\n");
    var e = assertThrows(DataFormatException.class, () -> BrownCorpus.read(dir));
    assertTrue(e.getMessage().endsWith("ca01 line 3: token 'said' is not word/tag"), e.getMessage());
  }
}
