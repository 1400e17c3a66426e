package dev.peftspark.datasets;

/**
 * Input data that cannot be used as given. Unchecked, and the message is complete on its own: it names the
 * file, the line or record, the field, and what was expected, so a CLI can print just the message.
 */
public final class DataFormatException extends RuntimeException {
  public DataFormatException(String message) {
    super(message);
  }

  public DataFormatException(String message, Throwable cause) {
    super(message, cause);
  }
}
