package dev.peftspark.core.config;

/**
 * A config that cannot be used: the message names the key (dotted, snake_case) or the file and says what is
 * allowed, so the CLI can print it as one line.
 */
public class ConfigException extends IllegalArgumentException {
  private final String key;

  public ConfigException(String key, String message) {
    super(key == null ? message : key + ": " + message);
    this.key = key;
  }

  public ConfigException(String message, Throwable cause) {
    super(message, cause);
    this.key = null;
  }

  /** The dotted key the problem is about, or null when it is about the file as a whole. */
  public String key() {
    return key;
  }
}
