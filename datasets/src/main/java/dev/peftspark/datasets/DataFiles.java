package dev.peftspark.datasets;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Opens data through Hadoop's FileSystem, so plain paths, file:// and hdfs:// take the same route.
 * A directory stands for its files (sorted by name, skipping hidden and _SUCCESS-style names), which is
 * how Spark and Hadoop jobs write their outputs. demo: URIs resolve through {@link DemoData}.
 */
public final class DataFiles {
  private DataFiles() {}

  /** One readable file: {@code name} is what messages show (the URI as the user wrote it). */
  public record DataFile(String name, Path path, Configuration conf) {
    public InputStream open() throws IOException {
      return path.getFileSystem(conf).open(path);
    }
  }

  private static volatile Configuration defaultConf;

  public static Configuration defaultConf() {
    Configuration c = defaultConf;
    if (c == null) {
      c = new Configuration();
      defaultConf = c;
    }
    return c;
  }

  /** The files a URI stands for: itself, a directory's data files in name order, or a demo: file. */
  public static List<DataFile> expand(String uri, Configuration conf) {
    if (uri == null || uri.isBlank()) {
      throw new DataFormatException("a data file URI is empty");
    }
    if (DemoData.isDemoUri(uri)) {
      java.nio.file.Path local = DemoData.resolveUri(uri);
      return List.of(new DataFile(uri, new Path(local.toUri()), conf));
    }
    Path path = new Path(uri);
    try {
      FileSystem fs = path.getFileSystem(conf);
      FileStatus status = fs.getFileStatus(path);
      if (!status.isDirectory()) {
        return List.of(new DataFile(uri, path, conf));
      }
      FileStatus[] children = fs.listStatus(path);
      Arrays.sort(children, Comparator.comparing(s -> s.getPath().getName()));
      List<DataFile> files = new ArrayList<>();
      for (FileStatus child : children) {
        String name = child.getPath().getName();
        if (child.isFile() && !name.startsWith(".") && !name.startsWith("_")) {
          files.add(new DataFile(child.getPath().toString(), child.getPath(), conf));
        }
      }
      if (files.isEmpty()) {
        throw new DataFormatException(uri + " is a directory with no data files in it");
      }
      return files;
    } catch (FileNotFoundException e) {
      throw new DataFormatException("data file not found: " + uri);
    } catch (IOException e) {
      throw new DataFormatException("cannot open " + uri + ": " + e.getMessage(), e);
    }
  }
}
