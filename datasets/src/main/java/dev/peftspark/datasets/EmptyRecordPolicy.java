package dev.peftspark.datasets;

import java.util.Locale;

/** What to do with a record whose text is empty (or null) or whose label is null. */
public enum EmptyRecordPolicy {
  /** Leave the record out and count it; the count is reported in {@link ReadResult#skipped()}. */
  SKIP,
  /** Stop with a {@link DataFormatException} naming the file and record. */
  REJECT;

  /** Parses the config spelling ("skip" / "reject", any case). */
  public static EmptyRecordPolicy parse(String name) {
    if (name != null) {
      for (EmptyRecordPolicy p : values()) {
        if (p.name().equals(name.trim().toUpperCase(Locale.ROOT))) {
          return p;
        }
      }
    }
    throw new IllegalArgumentException("empty_records must be 'skip' or 'reject', got '" + name + "'");
  }
}
