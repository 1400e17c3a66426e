package dev.peftspark.datasets;

/**
 * One labelled text. {@code source} is the URI it was read from and {@code recordNumber} its place there:
 * the line number for JSONL and CSV (1-based, header is line 1), the 1-based index for a JSON array.
 */
public record Example(String text, int label, String source, long recordNumber) {}
