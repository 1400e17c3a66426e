package dev.peftspark.spark.ml;

import dev.peftspark.core.peft.AdapterFiles;
import dev.peftspark.core.peft.LmAdapterFiles;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.CausalLmBase;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FileUtil;

import java.io.IOException;
import java.io.InputStream;
import java.io.Serializable;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * A saved adapter as bytes: the files of its PEFT directory ({@code adapter_config.json},
 * {@code adapter_model.safetensors}, {@code peft_spark.json}) by name. This is what a Model stage holds, what it
 * broadcasts to the executors and what it writes inside its stage folder, so every copy is the same PEFT layout.
 *
 * @param digest sha-256 of the files: the executors' cache key
 */
public record AdapterBytes(TreeMap<String, byte[]> files, String digest) implements Serializable {

  public static AdapterBytes of(Map<String, byte[]> files) {
    TreeMap<String, byte[]> sorted = new TreeMap<>(files);
    MessageDigest md = sha256();
    sorted.forEach((name, bytes) -> {
      md.update(name.getBytes(java.nio.charset.StandardCharsets.UTF_8));
      md.update(bytes);
    });
    return new AdapterBytes(sorted, HexFormat.of().formatHex(md.digest()));
  }

  /** Saves {@code model} with {@link AdapterFiles#save} and keeps the files. */
  public static AdapterBytes save(PeftClassifier model, List<String> labels, BaseModel base) throws IOException {
    Path dir = Files.createTempDirectory("peft-adapter");
    try {
      AdapterFiles.save(dir, model, labels, base.name(), base.hfId());
      return readLocal(dir);
    } finally {
      FileUtil.fullyDelete(dir.toFile());
    }
  }

  /** Saves a causal LM's adapter with {@link LmAdapterFiles#save} (as the CLI's train does) and keeps the files. */
  public static AdapterBytes save(PeftCausalLm model, CausalLmBase base) throws IOException {
    Path dir = Files.createTempDirectory("peft-adapter");
    try {
      LmAdapterFiles.save(dir, model, base.shape(), base.name(), base.hfId());
      LmAdapterFiles.info(dir);
      return of(files(dir));
    } finally {
      FileUtil.fullyDelete(dir.toFile());
    }
  }

  /** The files of a local adapter directory. */
  public static AdapterBytes readLocal(Path dir) throws IOException {
    AdapterFiles.info(dir);   // one clear message when it is not an adapter directory
    return of(files(dir));
  }

  private static Map<String, byte[]> files(Path dir) throws IOException {
    Map<String, byte[]> files = new TreeMap<>();
    try (Stream<Path> s = Files.list(dir)) {
      for (Path p : s.filter(Files::isRegularFile).toList()) files.put(p.getFileName().toString(), Files.readAllBytes(p));
    }
    return files;
  }

  /** The files of an adapter directory on any Hadoop FileSystem. */
  public static AdapterBytes read(String dir, Configuration conf) throws IOException {
    org.apache.hadoop.fs.Path path = new org.apache.hadoop.fs.Path(dir);
    FileSystem fs = path.getFileSystem(conf);
    if (!fs.exists(path)) throw new IOException("no adapter at " + dir);
    Map<String, byte[]> files = new TreeMap<>();
    for (FileStatus f : fs.listStatus(path)) {
      if (!f.isFile()) continue;
      try (InputStream in = fs.open(f.getPath())) {
        files.put(f.getPath().getName(), in.readAllBytes());
      }
    }
    if (!files.containsKey(AdapterFiles.EXTRA)) {
      throw new IOException("not a peft-spark adapter directory: " + dir + " has no " + AdapterFiles.EXTRA
          + " (it has " + files.keySet() + ")");
    }
    return of(files);
  }

  /** Writes the files into {@code dir} (which must not exist) under a temporary sibling name, then renames it. */
  public void write(String dir, Configuration conf) throws IOException {
    org.apache.hadoop.fs.Path target = new org.apache.hadoop.fs.Path(dir);
    FileSystem fs = target.getFileSystem(conf);
    if (fs.exists(target)) throw new IOException(dir + " already exists");
    org.apache.hadoop.fs.Path tmp = new org.apache.hadoop.fs.Path(target.getParent(),
        "." + target.getName() + ".tmp-" + UUID.randomUUID().toString().substring(0, 8));
    try {
      for (var e : files.entrySet()) {
        try (FSDataOutputStream out = fs.create(new org.apache.hadoop.fs.Path(tmp, e.getKey()), false)) {
          out.write(e.getValue());
        }
      }
      if (!fs.rename(tmp, target)) throw new IOException("cannot rename " + tmp + " to " + target);
    } finally {
      if (fs.exists(tmp)) fs.delete(tmp, true);
    }
  }

  /** The files in a new local temporary directory (the caller deletes it). */
  public Path toLocalDir() throws IOException {
    Path dir = Files.createTempDirectory("peft-adapter-" + digest.substring(0, 12));
    for (var e : files.entrySet()) Files.write(dir.resolve(e.getKey()), e.getValue());
    return dir;
  }

  /** Method, pooling, labels and LoRA settings, as {@link AdapterFiles#info} reads them. */
  public AdapterFiles.Info info() throws IOException {
    Path dir = toLocalDir();
    try {
      return AdapterFiles.info(dir);
    } finally {
      FileUtil.fullyDelete(dir.toFile());
    }
  }

  /** Method and settings of a causal-LM adapter, as {@link LmAdapterFiles#info} reads them (refuses others). */
  public LmAdapterFiles.Info lmInfo() throws IOException {
    Path dir = toLocalDir();
    try {
      return LmAdapterFiles.info(dir);
    } finally {
      FileUtil.fullyDelete(dir.toFile());
    }
  }

  public long size() {
    return files.values().stream().mapToLong(b -> b.length).sum();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
