package dev.peftspark.datasets;

import java.util.Objects;

/**
 * How to read labelled records.
 *
 * @param format      auto | jsonl | json | csv (auto: by extension: .jsonl/.ndjson, .json, .csv)
 * @param textField   field holding the text
 * @param labelField  field holding the label (integer class id, or a class name)
 * @param policy      what to do with empty text / null label
 * @param fixedLabels the label ids to use (pass the training set's map when reading the test set);
 *                    null: build the map from the labels seen
 */
public record ReaderOptions(
    String format, String textField, String labelField, EmptyRecordPolicy policy, LabelMap fixedLabels) {

  public ReaderOptions {
    Objects.requireNonNull(textField, "textField");
    Objects.requireNonNull(labelField, "labelField");
    Objects.requireNonNull(policy, "policy");
    format = format == null ? "auto" : format;
    RecordFormat.parse(format); // fail early on an unknown name
  }

  /** Defaults: format auto, fields "text" and "label", SKIP, labels from the data. */
  public static ReaderOptions defaults() {
    return new ReaderOptions("auto", "text", "label", EmptyRecordPolicy.SKIP, null);
  }

  public ReaderOptions withFixedLabels(LabelMap labels) {
    return new ReaderOptions(format, textField, labelField, policy, labels);
  }

  public ReaderOptions withFields(String text, String label) {
    return new ReaderOptions(format, text, label, policy, fixedLabels);
  }

  public ReaderOptions withPolicy(EmptyRecordPolicy p) {
    return new ReaderOptions(format, textField, labelField, p, fixedLabels);
  }

  public ReaderOptions withFormat(String f) {
    return new ReaderOptions(f, textField, labelField, policy, fixedLabels);
  }
}
