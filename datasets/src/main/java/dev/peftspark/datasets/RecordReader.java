package dev.peftspark.datasets;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.peftspark.datasets.lm.BrownCorpus;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.apache.hadoop.conf.Configuration;

/**
 * Reads labelled text records from JSONL, JSON-array or CSV files on any Hadoop FileSystem (plain paths,
 * file://, hdfs://) or from demo: URIs. All problems are {@link DataFormatException}s naming the file, the
 * line or record, and the field.
 *
 * <p>Field rules: a record that lacks the text or label field altogether is an error (most likely a wrong
 * field name), whatever the policy. A field that is present but holds empty text or a null label is an
 * "empty record", handled by {@link EmptyRecordPolicy}. Labels are integers (also integer-looking strings,
 * as CSV has no types) used as class ids, or names mapped through a {@link LabelMap}.
 */
public final class RecordReader {
  private static final Pattern INTEGER = Pattern.compile("-?\\d{1,9}");

  private RecordReader() {}

  public static ReadResult read(List<String> uris, ReaderOptions opts) {
    return read(uris, opts, DataFiles.defaultConf());
  }

  public static ReadResult read(List<String> uris, ReaderOptions opts, Configuration conf) {
    if (uris == null || uris.isEmpty()) {
      throw new DataFormatException("no data files given");
    }
    List<Pending> pending = new ArrayList<>();
    int[] skipped = {0};
    for (String uri : uris) {
      forEachRecord(uri, opts.format(), conf, raw -> {
        String text = text(raw, opts.textField());
        Object label = label(raw, opts.labelField());
        if (text.isBlank() || label == null) {
          if (opts.policy() == EmptyRecordPolicy.REJECT) {
            throw new DataFormatException(raw.where() + ": "
                + (text.isBlank() ? "empty text in field '" + opts.textField() + "'"
                                  : "null label in field '" + opts.labelField() + "'")
                + " (set empty_records: skip to leave such records out)");
          }
          skipped[0]++;
          return;
        }
        pending.add(new Pending(text, label, raw.source(), raw.number(), raw.where()));
      });
    }
    if (pending.isEmpty()) {
      throw new DataFormatException("no usable records in " + uris + " (" + skipped[0]
          + " skipped for empty text or null label)");
    }
    LabelMap labels = opts.fixedLabels() != null ? opts.fixedLabels() : labelMapOf(pending, opts.labelField());
    List<Example> examples = new ArrayList<>(pending.size());
    for (Pending p : pending) {
      examples.add(new Example(p.text, labelId(p, labels), p.source, p.number));
    }
    return new ReadResult(examples, skipped[0], labels);
  }

  /**
   * Texts only (for embedding), one per record in file order, format chosen by extension. Records with
   * null or empty text are kept as "" so outputs stay aligned with the input records.
   */
  public static List<String> readTexts(String uri, String textField) {
    return readTexts(uri, "auto", textField, DataFiles.defaultConf());
  }

  public static List<String> readTexts(String uri, String format, String textField, Configuration conf) {
    List<String> texts = new ArrayList<>();
    forEachRecord(uri, format, conf, raw -> texts.add(text(raw, textField)));
    return texts;
  }

  /**
   * Every record of the files a URI names (a file, a directory of files, or a demo: URI) in order, for readers
   * with their own field rules; {@code format} as in {@link ReaderOptions#format()}.
   */
  public static void forEachRecord(String uri, String format, Configuration conf, Consumer<RawRecord> sink) {
    if (BrownCorpus.isUri(uri)) {
      long n = 0;
      for (BrownCorpus.Document d : BrownCorpus.fromUri(uri)) {
        ObjectNode fields = JsonNodeFactory.instance.objectNode()
            .put("id", d.id()).put("genre", d.genre()).put("text", d.text());
        sink.accept(new RawRecord(uri, ++n, "document", fields));
      }
      return;
    }
    RecordFormat fixed = RecordFormat.parse(format == null ? "auto" : format);
    for (DataFiles.DataFile file : DataFiles.expand(uri, conf)) {
      RecordFormat f = fixed != null ? fixed : RecordFormat.forFile(file.name());
      try (InputStream in = file.open()) {
        switch (f) {
          case JSONL -> JsonlParser.parse(in, file.name(), sink);
          case JSON -> JsonArrayParser.parse(in, file.name(), sink);
          case CSV -> CsvParser.parse(in, file.name(), sink);
        }
      } catch (IOException e) {
        throw new DataFormatException("cannot read " + file.name() + ": " + e.getMessage(), e);
      }
    }
  }

  private static JsonNode field(RawRecord raw, String name, String role) {
    JsonNode value = raw.fields().get(name);
    if (value == null) {
      var have = new ArrayList<String>();
      raw.fields().fieldNames().forEachRemaining(have::add);
      throw new DataFormatException(raw.where() + ": no " + role + " field '" + name
          + "'; the record has fields " + have);
    }
    return value;
  }

  /** The text, "" when null. */
  private static String text(RawRecord raw, String name) {
    JsonNode v = field(raw, name, "text");
    if (v.isNull()) {
      return "";
    }
    if (v.isContainerNode()) {
      throw new DataFormatException(raw.where() + ": field '" + name + "' holds "
          + (v.isArray() ? "an array" : "an object") + ", expected text");
    }
    return v.asText();
  }

  /** Integer, String, or null for an empty label. */
  private static Object label(RawRecord raw, String name) {
    JsonNode v = field(raw, name, "label");
    if (v.isNull()) {
      return null;
    }
    if (v.isIntegralNumber() && v.canConvertToInt()) {
      return checkedClassId(v.intValue(), raw);
    }
    if (v.isTextual() || v.isBoolean()) {
      String s = v.asText().trim();
      if (s.isEmpty()) {
        return null;
      }
      return INTEGER.matcher(s).matches() ? checkedClassId(Integer.parseInt(s), raw) : s;
    }
    throw new DataFormatException(raw.where() + ": label field '" + name + "' holds " + v
        + "; expected an integer class id or a class name");
  }

  private static Integer checkedClassId(int id, RawRecord raw) {
    if (id < 0) {
      throw new DataFormatException(raw.where() + ": label " + id + " is negative; class ids start at 0");
    }
    return id;
  }

  private static LabelMap labelMapOf(List<Pending> pending, String labelField) {
    Pending firstInt = null;
    Pending firstName = null;
    int maxId = -1;
    var names = new TreeSet<String>();
    for (Pending p : pending) {
      if (p.label instanceof Integer id) {
        firstInt = firstInt == null ? p : firstInt;
        maxId = Math.max(maxId, id);
      } else {
        firstName = firstName == null ? p : firstName;
        names.add((String) p.label);
      }
    }
    if (firstInt != null && firstName != null) {
      throw new DataFormatException("label field '" + labelField + "' mixes integer ids (" + firstInt.where
          + ": " + firstInt.label + ") and class names (" + firstName.where + ": '" + firstName.label
          + "'); use one or the other");
    }
    return firstInt != null ? LabelMap.numeric(maxId + 1) : LabelMap.ofNames(names);
  }

  private static int labelId(Pending p, LabelMap labels) {
    if (labels.numeric()) {
      if (p.label instanceof Integer id && id < labels.size()) {
        return id;
      }
    } else {
      int id = labels.idOf(p.label.toString());
      if (id >= 0) {
        return id;
      }
    }
    throw new DataFormatException(p.where + ": label '" + p.label + "' is not among the known labels "
        + labels.describe() + " (labels come from the training data)");
  }

  private record Pending(String text, Object label, String source, long number, String where) {}
}
