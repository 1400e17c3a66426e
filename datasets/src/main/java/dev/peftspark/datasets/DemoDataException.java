package dev.peftspark.datasets;

/** A demo data set could not be provided (npm missing or failing, checksum mismatch, unknown name). */
public final class DemoDataException extends RuntimeException {
  public DemoDataException(String message) {
    super(message);
  }

  public DemoDataException(String message, Throwable cause) {
    super(message, cause);
  }
}
