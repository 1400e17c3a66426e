package dev.peftspark.datasets;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.CharacterCodingException;
import java.util.function.Consumer;

/** One JSON object per line; blank lines are ignored. */
final class JsonlParser {
  private static final ObjectReader READER = new ObjectMapper()
      .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
      .readerFor(JsonNode.class);

  private JsonlParser() {}

  static void parse(InputStream in, String source, Consumer<RawRecord> sink) throws IOException {
    BufferedReader reader = Utf8Lines.reader(in);
    long lineNo = 0;
    while (true) {
      String line;
      try {
        line = reader.readLine();
      } catch (CharacterCodingException e) {
        throw new DataFormatException(source + " line " + (lineNo + 1) + ": not valid UTF-8 text");
      }
      if (line == null) {
        return;
      }
      lineNo++;
      if (lineNo == 1) {
        line = Utf8Lines.stripBom(line);
      }
      if (line.isBlank()) {
        continue;
      }
      JsonNode node;
      try {
        node = READER.readValue(line);
      } catch (JsonProcessingException e) {
        throw new DataFormatException(
            source + " line " + lineNo + ": not valid JSON (" + e.getOriginalMessage() + ")");
      }
      if (!(node instanceof ObjectNode object)) {
        throw new DataFormatException(source + " line " + lineNo + ": expected a JSON object, found "
            + node.getNodeType().name().toLowerCase() + " (JSONL needs one object per line)");
      }
      sink.accept(new RawRecord(source, lineNo, "line", object));
    }
  }
}
