package dev.peftspark.spark.job;

import dev.peftspark.core.io.ResourceCache;
import dev.peftspark.core.train.OutputDir;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileChecksum;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.FileUtil;
import org.apache.spark.SparkConf;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkContext$;
import org.apache.spark.SparkEnv;

import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.UUID;

/**
 * Locations given as Hadoop FileSystem URIs (hdfs://, s3a://, ...) next to plain local paths: which is which,
 * a local copy of a remote directory (cached by path and content), and publishing a finished local output
 * directory to a remote one by temporary name and rename.
 */
public final class HadoopPaths {
  private HadoopPaths() {}

  /**
   * The Hadoop configuration jobs open files with, as Spark's own reads see it: on a driver with a running
   * SparkContext a copy of its {@code hadoopConfiguration()}; elsewhere Hadoop's defaults (core-site.xml) plus
   * every {@code spark.hadoop.*} key of this JVM's Spark (an executor's SparkEnv, or before any SparkContext the
   * system properties spark-submit sets). So {@code --conf spark.hadoop.fs.s3a.endpoint=...} reaches the data,
   * the base model, checkpoints and the output, on the driver and on executors alike.
   */
  public static Configuration conf() {
    scala.Option<SparkContext> active = SparkContext$.MODULE$.getActive();
    if (active.isDefined()) return new Configuration(active.get().hadoopConfiguration());
    Configuration conf = new Configuration();
    SparkEnv env = SparkEnv.get();
    SparkConf spark = env != null ? env.conf() : new SparkConf();
    for (scala.Tuple2<String, String> kv : spark.getAllWithPrefix(SPARK_HADOOP)) conf.set(kv._1(), kv._2());
    return conf;
  }

  private static final String SPARK_HADOOP = "spark.hadoop.";

  /** True for a URI with a scheme other than file:// (a plain path or file:// URI is local). */
  public static boolean isRemote(String location) {
    int colon = location.indexOf("://");
    return colon > 0 && !location.startsWith("file://");
  }

  /** A local path or file:// URI as a java.nio path. */
  public static Path local(String location) {
    if (isRemote(location))   // a remote URI read as a local path would silently write into a folder named "hdfs:"
      throw new IllegalArgumentException(location + ": this path must be local (a path or file: URI), not a remote URI");
    return location.startsWith("file:") ? Path.of(URI.create(location)) : Path.of(location);
  }

  /**
   * This JVM's local copy of the remote model directory {@code uri} (hdfs://, s3a://...), fetched once and kept under
   * the cache's {@code models/} folder: the system property {@code peft.spark.cache} (tests point it at a temporary
   * folder), else {@link ResourceCache#root()}.
   */
  public static Path cachedModelDir(String uri) throws IOException {
    String root = System.getProperty("peft.spark.cache");
    return cachedCopy(uri, (root != null ? Path.of(root) : ResourceCache.root()).resolve("models"), conf());
  }

  /** The local folder a run assembles {@code outputDir} in: itself, or a fresh temporary one for a remote URI. */
  public static Path runOutputDir(String outputDir) throws IOException {
    return isRemote(outputDir) ? Files.createTempDirectory("peft-spark-output").resolve("out") : local(outputDir);
  }

  /**
   * Finishes a run whose outputs are complete in {@code staging}: a fitter's checkpoints left in {@code local}
   * ({@link ClassificationJob#CHECKPOINTS}) join them, staging replaces {@code local} ({@link OutputDir#commit}), and
   * for a remote {@code outputDir} the whole folder is {@linkplain #publish published} and the local copy deleted.
   */
  public static void publishRun(Path staging, Path local, String outputDir) throws IOException {
    String keep = ClassificationJob.CHECKPOINTS;
    Path checkpoints = local.resolve(keep);
    if (Files.isDirectory(checkpoints)) Files.move(checkpoints, staging.resolve(keep));
    OutputDir.commit(staging, local);
    if (isRemote(outputDir)) {
      publish(local, outputDir, keep, conf());
      FileUtil.fullyDelete(local.getParent().toFile());
    }
  }

  /**
   * A local copy of the remote directory {@code uri}, under {@code cacheRoot}, named by a hash of the URI and
   * its files' checksums (or lengths and modification times), so a changed model is fetched again.
   */
  public static Path cachedCopy(String uri, Path cacheRoot, Configuration conf) throws IOException {
    org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(uri);
    FileSystem fs = src.getFileSystem(conf);
    if (!fs.getFileStatus(src).isDirectory()) throw new IOException("model '" + uri + "' is not a directory");
    MessageDigest md = sha256();
    md.update(uri.getBytes(StandardCharsets.UTF_8));
    for (FileStatus f : fs.listStatus(src)) {
      FileChecksum sum = f.isFile() ? fs.getFileChecksum(f.getPath()) : null;
      String key = f.getPath().getName() + ":" + f.getLen() + ":" + (sum != null ? sum : f.getModificationTime());
      md.update(key.getBytes(StandardCharsets.UTF_8));
    }
    Path target = cacheRoot.resolve(HexFormat.of().formatHex(md.digest()).substring(0, 16));
    if (Files.isDirectory(target)) return target;
    Files.createDirectories(cacheRoot);
    Path tmp = cacheRoot.resolve("." + target.getFileName() + "-" + UUID.randomUUID());
    fs.copyToLocalFile(false, src, new org.apache.hadoop.fs.Path(tmp.toUri()), true);
    try {
      Files.move(tmp, target, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      if (!Files.isDirectory(target)) throw e;   // another task of this JVM won the race: use its copy
      FileUtil.fullyDelete(tmp.toFile());
    }
    return target;
  }

  /**
   * Uploads the finished local directory {@code local} to {@code uri}: copied under a temporary sibling name,
   * the existing output's checkpoints carried over, then renamed into place, the old output removed last.
   */
  public static void publish(Path local, String uri, String keep, Configuration conf) throws IOException {
    org.apache.hadoop.fs.Path target = new org.apache.hadoop.fs.Path(uri);
    FileSystem fs = target.getFileSystem(conf);
    String id = UUID.randomUUID().toString().substring(0, 8);
    org.apache.hadoop.fs.Path tmp = new org.apache.hadoop.fs.Path(target.getParent(), "." + target.getName() + ".tmp-" + id);
    org.apache.hadoop.fs.Path old = new org.apache.hadoop.fs.Path(target.getParent(), "." + target.getName() + ".old-" + id);
    fs.copyFromLocalFile(false, true, new org.apache.hadoop.fs.Path(local.toUri()), tmp);
    try {
      org.apache.hadoop.fs.Path kept = new org.apache.hadoop.fs.Path(target, keep);
      if (fs.exists(kept) && !fs.rename(kept, new org.apache.hadoop.fs.Path(tmp, keep))) {
        throw new IOException("cannot move " + kept + " into " + tmp);
      }
      if (fs.exists(target) && !fs.rename(target, old)) throw new IOException("cannot move " + target + " aside");
      if (!fs.rename(tmp, target)) throw new IOException("cannot rename " + tmp + " to " + target);
    } catch (IOException e) {
      org.apache.hadoop.fs.Path moved = new org.apache.hadoop.fs.Path(tmp, keep);
      if (fs.exists(moved) && fs.exists(target)) fs.rename(moved, new org.apache.hadoop.fs.Path(target, keep));
      fs.delete(tmp, true);
      throw e;
    }
    fs.delete(old, true);
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
