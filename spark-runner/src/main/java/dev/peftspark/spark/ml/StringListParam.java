package dev.peftspark.spark.ml;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.ml.param.Param;
import scala.Function1;

/**
 * A Param holding a list of strings (the config's list keys, e.g. {@code lora.target_modules}), saved as a JSON
 * array as Spark's StringArrayParam is; that one needs its owning stage at construction, this one its uid.
 */
public final class StringListParam extends Param<String[]> {
  private static final ObjectMapper JSON = new ObjectMapper();

  public StringListParam(String parent, String name, String doc, Function1<String[], Object> isValid) {
    super(parent, name, doc, isValid);
  }

  @Override
  public String jsonEncode(String[] value) {
    try {
      return JSON.writeValueAsString(value);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("param " + name() + ": cannot write its value as JSON", e);
    }
  }

  @Override
  public String[] jsonDecode(String json) {
    try {
      return JSON.readValue(json, String[].class);
    } catch (JsonProcessingException e) {
      throw new IllegalArgumentException("param " + name() + ": expected a JSON array of strings, got " + json, e);
    }
  }
}
