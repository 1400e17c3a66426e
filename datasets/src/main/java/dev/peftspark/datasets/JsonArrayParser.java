package dev.peftspark.datasets;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.util.function.Consumer;

/**
 * A top-level JSON array of objects, streamed element by element: only one record is held as a tree at a
 * time, so a file larger than the heap's comfortable size still reads.
 */
final class JsonArrayParser {
  private static final ObjectMapper MAPPER = new ObjectMapper();
  private static final JsonFactory FACTORY = MAPPER.getFactory();

  private JsonArrayParser() {}

  static void parse(InputStream in, String source, Consumer<RawRecord> sink) throws IOException {
    long index = 0;
    try (JsonParser parser = FACTORY.createParser(in)) {
      JsonToken first = parser.nextToken();
      if (first != JsonToken.START_ARRAY) {
        throw new DataFormatException(source + ": expected a top-level JSON array of objects, found "
            + (first == null ? "an empty file" : describe(first))
            + " (use format jsonl for one object per line)");
      }
      while (true) {
        JsonToken token = parser.nextToken();
        if (token == JsonToken.END_ARRAY) {
          break;
        }
        index++;
        if (token == null) {
          throw new DataFormatException(source + ": the JSON array is not closed (file ends after "
              + (index - 1) + " records)");
        }
        if (token != JsonToken.START_OBJECT) {
          throw new DataFormatException(source + " record " + index + " (line "
              + parser.currentLocation().getLineNr() + "): expected a JSON object, found " + describe(token));
        }
        ObjectNode record = MAPPER.readTree(parser);
        sink.accept(new RawRecord(source, index, "record", record));
      }
      JsonToken after = parser.nextToken();
      if (after != null) {
        throw new DataFormatException(source + " line " + parser.currentLocation().getLineNr()
            + ": unexpected " + describe(after) + " after the end of the top-level array");
      }
    } catch (JsonProcessingException e) {
      var loc = e.getLocation();
      throw new DataFormatException(source + " record " + Math.max(index, 1)
          + (loc == null ? "" : " (line " + loc.getLineNr() + ", column " + loc.getColumnNr() + ")")
          + ": not valid JSON (" + e.getOriginalMessage() + ")");
    }
  }

  private static String describe(JsonToken token) {
    return switch (token) {
      case START_OBJECT -> "an object";
      case START_ARRAY -> "an array";
      case VALUE_STRING -> "a string";
      case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> "a number";
      case VALUE_TRUE, VALUE_FALSE -> "a boolean";
      case VALUE_NULL -> "null";
      default -> token.asString() == null ? token.name() : "'" + token.asString() + "'";
    };
  }
}
