package dev.peftspark.datasets;

import java.util.Locale;

/** The on-disk layouts {@link RecordReader} understands. */
enum RecordFormat {
  JSONL, JSON, CSV;

  /** Null means "auto": choose per file with {@link #forFile}. */
  static RecordFormat parse(String name) {
    return switch (name.trim().toLowerCase(Locale.ROOT)) {
      case "auto" -> null;
      case "jsonl", "ndjson" -> JSONL;
      case "json" -> JSON;
      case "csv" -> CSV;
      default -> throw new IllegalArgumentException(
          "format must be auto, jsonl, json or csv, got '" + name + "'");
    };
  }

  static RecordFormat forFile(String uri) {
    String lower = uri.toLowerCase(Locale.ROOT);
    if (lower.endsWith(".jsonl") || lower.endsWith(".ndjson")) {
      return JSONL;
    }
    if (lower.endsWith(".json")) {
      return JSON;
    }
    if (lower.endsWith(".csv")) {
      return CSV;
    }
    throw new DataFormatException("cannot tell the format of " + uri
        + " from its extension (.jsonl/.ndjson, .json or .csv); set the format to jsonl, json or csv");
  }
}
