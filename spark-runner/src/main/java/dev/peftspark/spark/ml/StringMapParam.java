package dev.peftspark.spark.ml;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.ml.param.Param;
import scala.Function1;

import java.util.Map;
import java.util.TreeMap;

/**
 * A Param holding a map of strings (the config's {@code lora.rank_pattern}, {@code lora.alpha_pattern}), saved as a
 * JSON object; Spark ML has no map-valued Param type of its own.
 */
public final class StringMapParam extends Param<Map<String, String>> {
  private static final ObjectMapper JSON = new ObjectMapper();

  public StringMapParam(String parent, String name, String doc, Function1<Map<String, String>, Object> isValid) {
    super(parent, name, doc, isValid);
  }

  @Override
  public String jsonEncode(Map<String, String> value) {
    try {
      return JSON.writeValueAsString(new TreeMap<>(value));
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("param " + name() + ": cannot write " + value + " as JSON", e);
    }
  }

  @Override
  public Map<String, String> jsonDecode(String json) {
    try {
      return new TreeMap<>(JSON.readValue(json, new TypeReference<Map<String, String>>() {}));
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("param " + name() + ": expected a JSON object of strings, got " + json, e);
    }
  }
}
