package dev.peftspark.spark.dist;

import org.apache.spark.SparkConf;

import java.util.Properties;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * The driver JVM's {@code -Dpeft.*} compute settings ({@code peft.gemm.precision=bf16}, {@code peft.exp},
 * {@code peft.parallel.spin.us}, ...) passed on to executor JVMs: the math reads them as system properties, and
 * an executor on another machine would otherwise run with its defaults (FP32 where the driver asked for bf16).
 * Only for a context this project starts; executors of a session the caller made are already running.
 */
public final class ExecutorSettings {
  static final String OPTIONS = "spark.executor.extraJavaOptions";
  /** Left out: paths on the driver's machine (its data and model caches), which executors choose themselves. */
  static final String MACHINE_LOCAL = "peft.spark.";
  private static final Pattern PLAIN = Pattern.compile("[A-Za-z0-9._=/:,+@%-]*");

  private ExecutorSettings() {}

  /**
   * {@code conf} with every {@code peft.*} property of {@code props} (but {@code peft.spark.*}) appended to
   * {@code spark.executor.extraJavaOptions} as {@code -Dkey=value}, quoted as Spark splits those options; a key
   * those options already set keeps the user's value.
   */
  public static SparkConf forward(SparkConf conf, Properties props) {
    String given = conf.get(OPTIONS, "");
    StringBuilder opts = new StringBuilder(given);
    for (String key : new TreeSet<>(props.stringPropertyNames())) {
      if (!key.startsWith("peft.") || key.startsWith(MACHINE_LOCAL) || given.contains("-D" + key + "=")) continue;
      if (opts.length() > 0) opts.append(' ');
      opts.append(quoted("-D" + key + "=" + props.getProperty(key)));
    }
    return opts.length() == given.length() ? conf : conf.set(OPTIONS, opts.toString());
  }

  /** {@code forward(conf, System.getProperties())}. */
  public static SparkConf forward(SparkConf conf) { return forward(conf, System.getProperties()); }

  /** One word of Spark's option splitting ({@code Utils.splitCommandString}): in double quotes, \ escapes " and \. */
  static String quoted(String arg) {
    if (PLAIN.matcher(arg).matches()) return arg;
    return '"' + arg.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
  }
}
