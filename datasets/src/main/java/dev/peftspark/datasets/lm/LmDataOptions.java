package dev.peftspark.datasets.lm;

import java.util.Locale;
import java.util.Objects;

/**
 * How to read causal-LM data.
 *
 * @param format        text | instruction | tokenized
 * @param textField     text: the field holding a document (JSONL/JSON/CSV records)
 * @param promptField   instruction: the field holding the prompt
 * @param responseField instruction: the field holding the response
 * @param template      instruction: the text before the response, with {@code {prompt}} where the prompt goes
 * @param perFile       text, plain-text files: a whole file is one document (else one document per line)
 * @param maxLength     tokens per row
 * @param packing       true: concatenate examples into full rows (longer examples continue in the next row);
 *                      false: one example per row, truncated to maxLength, rows padded
 * @param fileFormat    auto | jsonl | json | csv | txt (auto: by extension; .txt and .text are plain text)
 */
public record LmDataOptions(String format, String textField, String promptField, String responseField,
    String template, boolean perFile, int maxLength, boolean packing, String fileFormat) {

  public static final String DEFAULT_TEMPLATE = "### Instruction:\n{prompt}\n\n### Response:\n";

  public LmDataOptions {
    format = format == null ? "text" : format.trim().toLowerCase(Locale.ROOT);
    if (!format.equals("text") && !format.equals("instruction") && !format.equals("tokenized")) {
      throw new IllegalArgumentException("format must be text, instruction or tokenized, got '" + format + "'");
    }
    Objects.requireNonNull(textField, "textField");
    Objects.requireNonNull(promptField, "promptField");
    Objects.requireNonNull(responseField, "responseField");
    template = template == null ? DEFAULT_TEMPLATE : template;
    if (!template.contains("{prompt}")) {
      throw new IllegalArgumentException("template must contain {prompt}, got '" + template + "'");
    }
    if (maxLength < 2) {
      throw new IllegalArgumentException("max_length must be >= 2, got " + maxLength);
    }
    fileFormat = fileFormat == null ? "auto" : fileFormat.trim().toLowerCase(Locale.ROOT);
    if (!fileFormat.matches("auto|jsonl|ndjson|json|csv|txt|text")) {
      throw new IllegalArgumentException("file format must be auto, jsonl, json, csv or txt, got '" + fileFormat + "'");
    }
  }

  /** The options without a file format (auto). */
  public LmDataOptions(String format, String textField, String promptField, String responseField, String template,
      boolean perFile, int maxLength, boolean packing) {
    this(format, textField, promptField, responseField, template, perFile, maxLength, packing, "auto");
  }

  /** Plain text, field "text", one document per line, 512 tokens, packed. */
  public static LmDataOptions defaults() {
    return new LmDataOptions("text", "text", "prompt", "response", DEFAULT_TEMPLATE, false, 512, true, "auto");
  }

  public LmDataOptions withFormat(String f) {
    return new LmDataOptions(f, textField, promptField, responseField, template, perFile, maxLength, packing,
        fileFormat);
  }

  public LmDataOptions withMaxLength(int n) {
    return new LmDataOptions(format, textField, promptField, responseField, template, perFile, n, packing,
        fileFormat);
  }

  public LmDataOptions withPacking(boolean p) {
    return new LmDataOptions(format, textField, promptField, responseField, template, perFile, maxLength, p,
        fileFormat);
  }

  public LmDataOptions withPerFile(boolean p) {
    return new LmDataOptions(format, textField, promptField, responseField, template, p, maxLength, packing,
        fileFormat);
  }

  public LmDataOptions withFileFormat(String f) {
    return new LmDataOptions(format, textField, promptField, responseField, template, perFile, maxLength, packing,
        f);
  }

  public LmDataOptions withFields(String text, String prompt, String response) {
    return new LmDataOptions(format, text, prompt, response, template, perFile, maxLength, packing, fileFormat);
  }

  public LmDataOptions withTemplate(String t) {
    return new LmDataOptions(format, textField, promptField, responseField, t, perFile, maxLength, packing,
        fileFormat);
  }
}
