package dev.peftspark.spark.dist;

import org.apache.spark.SparkConf;
import org.apache.spark.util.Utils;
import org.junit.jupiter.api.Test;
import scala.collection.JavaConverters;

import java.util.List;
import java.util.Properties;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/** The driver's -Dpeft.* compute settings reach executor JVMs' options, as Spark will split them. */
class ExecutorSettingsTest {
  private static List<String> words(SparkConf conf) {
    return JavaConverters.seqAsJavaList(Utils.splitCommandString(conf.get(ExecutorSettings.OPTIONS)));
  }

  @Test
  void forwardsPeftSettingsButNotMachinePathsNorOtherProperties() {
    Properties props = new Properties();
    props.setProperty("peft.gemm.precision", "bf16");
    props.setProperty("peft.exp", "polynomial");
    props.setProperty("peft.spark.cache", "/driver/only");      // a path on the driver's machine
    props.setProperty("java.io.tmpdir", "/tmp");
    SparkConf conf = new SparkConf(false).set(ExecutorSettings.OPTIONS, "--add-opens=java.base/java.nio=ALL-UNNAMED -Xss4m");
    assertEquals(List.of("--add-opens=java.base/java.nio=ALL-UNNAMED", "-Xss4m", "-Dpeft.exp=polynomial",
        "-Dpeft.gemm.precision=bf16"), words(ExecutorSettings.forward(conf, props)));
  }

  @Test
  void theUsersOwnExecutorSettingWins() {
    Properties props = new Properties();
    props.setProperty("peft.gemm.precision", "bf16");
    props.setProperty("peft.parallel.spin.us", "0");
    SparkConf conf = new SparkConf(false).set(ExecutorSettings.OPTIONS, "-Dpeft.gemm.precision=fp32");
    assertEquals(List.of("-Dpeft.gemm.precision=fp32", "-Dpeft.parallel.spin.us=0"), words(ExecutorSettings.forward(conf, props)));
  }

  @Test
  void valuesWithSpacesAndQuotesSurviveSparksSplitting() {
    Properties props = new Properties();
    String odd = "a b \"c\" \\d 'e'";
    props.setProperty("peft.note", odd);
    assertEquals(List.of("-Dpeft.note=" + odd), words(ExecutorSettings.forward(new SparkConf(false), props)));
  }

  @Test
  void nothingToForwardLeavesTheOptionsAlone() {
    Properties props = new Properties();
    props.setProperty("peft.spark.data.cache", "/x");
    SparkConf conf = ExecutorSettings.forward(new SparkConf(false), props);
    assertFalse(conf.contains(ExecutorSettings.OPTIONS));
  }
}
