package dev.peftspark.datasets;

import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * One record as parsed, before field extraction. CSV cells become text nodes.
 * Fields are values as parsed; readers choose and check the fields they need.
 *
 * @param number line number (JSONL, CSV) or 1-based index (JSON array)
 */
public record RawRecord(String source, long number, String unit, ObjectNode fields) {

  /** "data/train.jsonl line 7" or "data/train.json record 7", for messages. */
  public String where() {
    return source + " " + unit + " " + number;
  }
}
