package dev.peftspark.datasets.lm;

import com.fasterxml.jackson.databind.JsonNode;
import dev.peftspark.datasets.DataFiles;
import dev.peftspark.datasets.DataFormatException;
import dev.peftspark.datasets.RawRecord;
import dev.peftspark.datasets.RecordReader;
import dev.peftspark.datasets.Utf8Lines;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;
import org.apache.hadoop.conf.Configuration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Causal-LM examples from data files, in three formats ({@link LmDataOptions#format()}):
 * <ul>
 *   <li>{@code text}: documents (a record's text field; a line or a whole plain-text file; a {@code demo:brown}
 *       document), each framed as prefix + text + EOS, every token a target;</li>
 *   <li>{@code instruction}: prompt and response fields, the prompt put into the template, loss only on the
 *       response and the EOS that follows it;</li>
 *   <li>{@code tokenized}: {@code input_ids} and optional {@code labels} (-100: no loss) taken as they are,
 *       after checking them against the vocabulary.</li>
 * </ul>
 * Records come from JSONL, JSON or CSV files through {@link RecordReader} (any Hadoop FileSystem, demo: URIs);
 * errors name the file, line and field. Without packing an example longer than max_length keeps its first
 * max_length tokens; with packing it is kept whole and the batcher continues it in the next row.
 */
public final class LmRecords {
  private static final Logger log = LoggerFactory.getLogger(LmRecords.class);
  static final String INPUT_IDS = "input_ids";
  static final String LABELS = "labels";

  private LmRecords() {}

  public static List<LmExample> read(List<String> uris, LmDataOptions opts, LmTokenizer tokenizer) {
    return read(uris, opts, tokenizer, DataFiles.defaultConf());
  }

  /** Tokenized data needs no tokenizer, only the vocabulary size to check ids against. */
  public static List<LmExample> readTokenized(List<String> uris, LmDataOptions opts, int vocabSize) {
    return read(uris, opts.withFormat("tokenized"), null, vocabSize, DataFiles.defaultConf());
  }

  public static List<LmExample> read(List<String> uris, LmDataOptions opts, LmTokenizer tokenizer,
      Configuration conf) {
    return read(uris, opts, tokenizer, tokenizer.vocabSize(), conf);
  }

  private static List<LmExample> read(List<String> uris, LmDataOptions opts, LmTokenizer tokenizer, int vocabSize,
      Configuration conf) {
    if (uris == null || uris.isEmpty()) {
      throw new DataFormatException("no data files given");
    }
    List<LmExample> out = new ArrayList<>();
    int[] dropped = {0, 0};   // empty documents, instructions whose response was cut off entirely
    int[] truncated = {0};
    Consumer<LmExample> add = ex -> {
      if (!opts.packing() && ex.length() > opts.maxLength()) {
        ex = ex.truncated(opts.maxLength());
        truncated[0]++;
        if (ex.targets() == 0) {
          dropped[1]++;
          return;
        }
      }
      out.add(ex);
    };
    for (String uri : uris) {
      switch (opts.format()) {
        case "text" -> forEachDocument(uri, opts, conf, text -> {
          if (text.isBlank()) {
            dropped[0]++;
          } else {
            add.accept(document(text, tokenizer));
          }
        });
        case "instruction" -> RecordReader.forEachRecord(uri, recordFormat(opts), conf, raw -> add.accept(
            instruction(text(raw, opts.promptField()), text(raw, opts.responseField()), opts.template(), tokenizer)));
        case "tokenized" -> RecordReader.forEachRecord(uri, recordFormat(opts), conf,
            raw -> add.accept(tokenized(raw, vocabSize)));
        default -> throw new IllegalStateException(opts.format());
      }
    }
    if (out.isEmpty()) {
      throw new DataFormatException("no usable " + opts.format() + " examples in " + uris);
    }
    if (dropped[0] + dropped[1] + truncated[0] > 0) {
      log.info("Read {} {} examples from {}: {} blank documents left out, {} truncated to {} tokens ({} of them "
          + "left out: no response token was left)", out.size(), opts.format(), uris, dropped[0], truncated[0],
          opts.maxLength(), dropped[1]);
    }
    return out;
  }

  /** prefix + text + EOS, all targets. */
  public static LmExample document(String text, LmTokenizer tokenizer) {
    int[] prefix = tokenizer.prefixIds();
    int[] body = tokenizer.encode(text);
    int[] ids = new int[prefix.length + body.length + 1];
    System.arraycopy(prefix, 0, ids, 0, prefix.length);
    System.arraycopy(body, 0, ids, prefix.length, body.length);
    ids[ids.length - 1] = tokenizer.eosId();
    return LmExample.ofText(ids);
  }

  /**
   * prefix + template(prompt) + response + EOS; the labels of the prefix and the prompt part are -100. The text is
   * encoded as one string, as it reads; the prompt part is the longest run of leading ids it shares with the
   * prompt encoded alone (all of them unless a token spans the boundary, which then counts as response).
   */
  public static LmExample instruction(String prompt, String response, String template, LmTokenizer tokenizer) {
    String promptText = template.replace("{prompt}", prompt);
    int[] prefix = tokenizer.prefixIds();
    int[] promptIds = tokenizer.encode(promptText);
    int[] body = tokenizer.encode(promptText + response);
    int shared = 0;
    while (shared < promptIds.length && shared < body.length && promptIds[shared] == body[shared]) {
      shared++;
    }
    int[] ids = new int[prefix.length + body.length + 1];
    System.arraycopy(prefix, 0, ids, 0, prefix.length);
    System.arraycopy(body, 0, ids, prefix.length, body.length);
    ids[ids.length - 1] = tokenizer.eosId();
    int[] labels = ids.clone();
    Arrays.fill(labels, 0, prefix.length + shared, LmExample.IGNORE);
    return new LmExample(ids, labels);
  }

  private static LmExample tokenized(RawRecord raw, int vocabSize) {
    int[] ids = intArray(raw, INPUT_IDS, vocabSize, false);
    if (ids == null) {
      throw new DataFormatException(raw.where() + ": no field '" + INPUT_IDS + "'; the record has fields "
          + fieldNames(raw));
    }
    if (ids.length == 0) {
      throw new DataFormatException(raw.where() + ": field '" + INPUT_IDS + "' is empty");
    }
    int[] labels = intArray(raw, LABELS, vocabSize, true);
    if (labels == null) {
      return LmExample.ofText(ids);
    }
    if (labels.length != ids.length) {
      throw new DataFormatException(raw.where() + ": field '" + LABELS + "' has " + labels.length + " entries but '"
          + INPUT_IDS + "' has " + ids.length + "; they must be aligned");
    }
    return new LmExample(ids, labels);
  }

  /** The field as ints in [0, vocabSize) (also -100 for labels); null when absent or null. */
  private static int[] intArray(RawRecord raw, String field, int vocabSize, boolean isLabels) {
    JsonNode v = raw.fields().get(field);
    if (v == null || v.isNull()) {
      return null;
    }
    if (!v.isArray()) {
      throw new DataFormatException(raw.where() + ": field '" + field + "' holds " + describe(v)
          + "; expected an array of integer token ids");
    }
    int[] out = new int[v.size()];
    for (int i = 0; i < out.length; i++) {
      JsonNode e = v.get(i);
      boolean ok = e.isIntegralNumber() && e.canConvertToInt()
          && ((e.intValue() >= 0 && e.intValue() < vocabSize) || (isLabels && e.intValue() == LmExample.IGNORE));
      if (!ok) {
        throw new DataFormatException(raw.where() + ": field '" + field + "' element " + i + " is " + e
            + "; expected " + (isLabels ? LmExample.IGNORE + " or " : "") + "a token id in 0.." + (vocabSize - 1));
      }
      out[i] = e.intValue();
    }
    return out;
  }

  private static String text(RawRecord raw, String field) {
    JsonNode v = raw.fields().get(field);
    if (v == null) {
      throw new DataFormatException(raw.where() + ": no field '" + field + "'; the record has fields "
          + fieldNames(raw));
    }
    if (v.isNull() || v.isContainerNode()) {
      throw new DataFormatException(raw.where() + ": field '" + field + "' holds " + describe(v) + ", expected text");
    }
    return v.asText();
  }

  private static String describe(JsonNode v) {
    return v.isNull() ? "null" : v.isArray() ? "an array" : v.isObject() ? "an object" : v.toString();
  }

  private static List<String> fieldNames(RawRecord raw) {
    List<String> names = new ArrayList<>();
    raw.fields().fieldNames().forEachRemaining(names::add);
    return names;
  }

  /** Texts of the text format: records' text field, or plain-text lines / files. */
  private static void forEachDocument(String uri, LmDataOptions opts, Configuration conf, Consumer<String> sink) {
    if (BrownCorpus.isUri(uri)) {
      RecordReader.forEachRecord(uri, "auto", conf, raw -> sink.accept(text(raw, "text")));
      return;
    }
    for (DataFiles.DataFile file : DataFiles.expand(uri, conf)) {
      if (isPlainText(file.name(), opts.fileFormat())) {
        readPlainText(file, opts.perFile(), sink);
      } else {
        RecordReader.forEachRecord(file.name(), recordFormat(opts), conf, raw -> {
          JsonNode v = raw.fields().get(opts.textField());
          sink.accept(v != null && v.isNull() ? "" : text(raw, opts.textField()));
        });
      }
    }
  }

  private static String recordFormat(LmDataOptions opts) {
    return opts.fileFormat().equals("txt") || opts.fileFormat().equals("text") ? "auto" : opts.fileFormat();
  }

  private static boolean isPlainText(String name, String fileFormat) {
    if (!fileFormat.equals("auto")) {
      return fileFormat.equals("txt") || fileFormat.equals("text");
    }
    String lower = name.toLowerCase(Locale.ROOT);
    return lower.endsWith(".txt") || lower.endsWith(".text");
  }

  private static void readPlainText(DataFiles.DataFile file, boolean perFile, Consumer<String> sink) {
    StringBuilder whole = new StringBuilder();
    CharsetDecoder utf8 = StandardCharsets.UTF_8.newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    long lineNo = 0;
    try (InputStream in = new BufferedInputStream(file.open(), 1 << 16)) {
      for (int b = in.read(); ; b = in.read()) {
        if (b != '\n' && b != -1) {
          line.write(b);
          continue;
        }
        if (b == -1 && line.size() == 0) {
          break;
        }
        lineNo++;
        String text;
        try {
          text = utf8.decode(ByteBuffer.wrap(line.toByteArray())).toString();
        } catch (CharacterCodingException e) {
          throw new DataFormatException(file.name() + " line " + lineNo + ": not valid UTF-8 text");
        }
        line.reset();
        text = text.endsWith("\r") ? text.substring(0, text.length() - 1) : text;
        text = lineNo == 1 ? Utf8Lines.stripBom(text) : text;
        if (perFile) {
          whole.append(lineNo == 1 ? "" : "\n").append(text);
        } else if (!text.isBlank()) {
          sink.accept(text);
        }
        if (b == -1) {
          break;
        }
      }
    } catch (IOException e) {
      throw new DataFormatException("cannot read " + file.name() + ": " + e.getMessage(), e);
    }
    if (perFile) {
      sink.accept(whole.toString());
    }
  }
}
