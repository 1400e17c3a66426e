package dev.peftspark.core.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Typed reads of a Hugging Face {@code config.json}; every problem names the file and the field. */
final class ConfigJson {
  static final ObjectMapper JSON = new ObjectMapper();

  private final String source;
  private final JsonNode root;

  ConfigJson(String source, JsonNode root) {
    this.source = source;
    this.root = root;
    if (!root.isObject()) throw error("the file must hold one JSON object");
  }

  static ConfigJson read(Path file) {
    try {
      return new ConfigJson(file.toString(), JSON.readTree(Files.readAllBytes(file)));
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException(file + ": no such file (a Hugging Face model directory holds config.json)");
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalArgumentException(file + ": not valid JSON: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw new IllegalArgumentException(file + ": cannot be read: " + e.getMessage());
    }
  }

  JsonNode root() { return root; }

  boolean has(String field) { return root.hasNonNull(field); }

  IllegalArgumentException error(String message) { return new IllegalArgumentException(source + ": " + message); }

  int requireInt(String field) {
    if (!has(field)) throw error("missing required field '" + field + "' (a positive integer)");
    return positiveInt(field);
  }

  int optInt(String field, int fallback) { return has(field) ? positiveInt(field) : fallback; }

  private int positiveInt(String field) {
    JsonNode n = root.get(field);
    if (!n.canConvertToInt() || !n.isIntegralNumber() || n.asInt() < 1)
      throw error("field '" + field + "' must be a positive integer, got " + n);
    return n.asInt();
  }

  double optDouble(String field, double fallback) {
    if (!has(field)) return fallback;
    JsonNode n = root.get(field);
    if (!n.isNumber() || !(n.asDouble() > 0)) throw error("field '" + field + "' must be a positive number, got " + n);
    return n.asDouble();
  }

  boolean optBool(String field, boolean fallback) {
    if (!has(field)) return fallback;
    JsonNode n = root.get(field);
    if (!n.isBoolean()) throw error("field '" + field + "' must be true or false, got " + n);
    return n.asBoolean();
  }

  String optString(String field, String fallback) {
    if (!has(field)) return fallback;
    JsonNode n = root.get(field);
    if (!n.isTextual()) throw error("field '" + field + "' must be a string, got " + n);
    return n.asText();
  }
}
