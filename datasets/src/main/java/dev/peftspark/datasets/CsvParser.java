package dev.peftspark.datasets;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.nio.charset.CharacterCodingException;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.function.Consumer;

/**
 * CSV with a header row, RFC 4180 quoting: a quoted field may hold commas, newlines and doubled quotes ("").
 * Line ends may be LF, CRLF or CR. Blank lines are ignored. A record's number is the line it starts on.
 */
final class CsvParser {
  private final Reader in;
  private final String source;
  private int pending = -2; // one character of look-ahead; -2: none
  private long line = 1;
  private long rowStartLine;
  private boolean rowWasBlank;

  private CsvParser(Reader in, String source) {
    this.in = in;
    this.source = source;
  }

  static void parse(InputStream stream, String source, Consumer<RawRecord> sink) throws IOException {
    CsvParser p = new CsvParser(Utf8Lines.reader(stream), source);
    List<String> header = p.nextRow();
    while (header != null && p.rowWasBlank) {
      header = p.nextRow();
    }
    if (header == null) {
      throw new DataFormatException(source + ": empty CSV file (expected a header row naming the fields)");
    }
    header.set(0, Utf8Lines.stripBom(header.get(0)));
    var seen = new HashSet<String>();
    for (String name : header) {
      if (!seen.add(name)) {
        throw new DataFormatException(source + " line " + p.rowStartLine + ": the header names field '"
            + name + "' twice " + header);
      }
    }
    List<String> row;
    while ((row = p.nextRow()) != null) {
      if (p.rowWasBlank) {
        continue;
      }
      if (row.size() != header.size()) {
        throw new DataFormatException(source + " line " + p.rowStartLine + ": expected " + header.size()
            + " fields as in the header " + header + ", found " + row.size()
            + " (quote fields that contain commas or newlines)");
      }
      ObjectNode fields = JsonNodeFactory.instance.objectNode();
      for (int i = 0; i < row.size(); i++) {
        fields.put(header.get(i), row.get(i));
      }
      sink.accept(new RawRecord(source, p.rowStartLine, "line", fields));
    }
  }

  /** The next row's cells, or null at the end of the file. */
  private List<String> nextRow() throws IOException {
    int c = read();
    if (c == -1) {
      return null;
    }
    rowStartLine = line;
    List<String> cells = new ArrayList<>();
    StringBuilder cell = new StringBuilder();
    boolean quoted = false;
    while (true) {
      if (c == -1 || c == '\n' || c == '\r') {
        endLine(c);
        cells.add(cell.toString());
        rowWasBlank = cells.size() == 1 && !quoted && cell.length() == 0;
        return cells;
      }
      if (c == ',') {
        cells.add(cell.toString());
        cell.setLength(0);
        quoted = false;
        c = read();
        continue;
      }
      if (c == '"') {
        if (quoted || cell.length() > 0) {
          throw new DataFormatException(source + " line " + line + ": a quote inside an unquoted field;"
              + " quote the whole field and double any quote inside it (\"\")");
        }
        quoted = true;
        long openedOn = line;
        while (true) {
          c = read();
          if (c == -1) {
            throw new DataFormatException(source + " line " + openedOn
                + ": a quoted field starts here and is never closed");
          }
          if (c == '"') {
            c = read();
            if (c != '"') {
              break; // closing quote; c is the character after it
            }
          } else if (c == '\n' || c == '\r') {
            endLine(c);
            if (c == '\r') {
              c = '\n'; // store CRLF / CR inside a field as LF
            }
          }
          cell.append((char) c);
        }
        if (c != ',' && c != '\n' && c != '\r' && c != -1) {
          throw new DataFormatException(source + " line " + line + ": unexpected character '" + (char) c
              + "' after a closing quote (expected a comma or the end of the line)");
        }
        continue;
      }
      cell.append((char) c);
      c = read();
    }
  }

  /** Counts a line end; a CR followed by LF is one line end. */
  private void endLine(int c) throws IOException {
    if (c == -1) {
      return;
    }
    if (c == '\r') {
      int next = read();
      if (next != '\n') {
        pending = next;
      }
    }
    line++;
  }

  private int read() throws IOException {
    if (pending != -2) {
      int c = pending;
      pending = -2;
      return c;
    }
    try {
      return in.read();
    } catch (CharacterCodingException e) {
      throw new DataFormatException(source + " line " + line + ": not valid UTF-8 text");
    }
  }
}
