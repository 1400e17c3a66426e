package dev.peftspark.datasets;

import java.util.List;

/**
 * Examples read from one or more files, in file order then record order.
 *
 * @param skipped records left out under {@link EmptyRecordPolicy#SKIP} (empty text or null label)
 * @param labels  the label ids used: given by the caller, or built from the labels seen
 */
public record ReadResult(List<Example> examples, int skipped, LabelMap labels) {
  public ReadResult {
    examples = List.copyOf(examples);
  }

  public List<String> texts() {
    return examples.stream().map(Example::text).toList();
  }

  /** The class id of each example, in order. */
  public int[] labelIds() {
    return examples.stream().mapToInt(Example::label).toArray();
  }
}
