package dev.peftspark.spark.dist;

import dev.peftspark.core.config.JobConfigLoader;
import dev.peftspark.core.model.PackedTensors;
import dev.peftspark.core.nn.Param;
import dev.peftspark.core.nn.Pooling;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftClassifier;
import dev.peftspark.core.peft.ia3.Ia3Config;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.core.peft.prompt.PromptConfig;
import dev.peftspark.core.quant.QuantizedLinear;
import dev.peftspark.spark.TestModels;
import dev.peftspark.spark.job.BaseModel;
import dev.peftspark.spark.job.BaseStorage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * An executor rebuilds exactly the driver's model from the serialized spec, for every method: same trainable
 * tensors, same shapes, same frozen-base behaviour (a spec that dropped DoRA, the bias option or QLoRA would train
 * a different model on the executors than the driver saves).
 */
class ModelSpecTest {
  @TempDir static Path tmp;

  @Test
  void everyMethodRebuildsTheSameModelOnAnExecutor() throws Exception {
    Path dir = TestModels.tinyBertDir(tmp.resolve("tiny"), 8, 2, 3);
    BaseModel base = BaseModel.load(dir.toString());
    LoraConfig dora = new LoraConfig(2, 4, 0.0, List.of("query", "value"), false, "lora_only", true, true,
        Map.of("value", 3), Map.of(), List.of(1));
    List<PeftClassifier> models = List.of(
        create(Method.LORA, dora, null, null, base),
        create(Method.QLORA, new LoraConfig(2, 4, 0.1, List.of("key"), true, "none", false), null, null, base),
        create(Method.IA3, null, new Ia3Config(List.of("key", "output.dense"), List.of("output.dense")), null, base),
        create(Method.PROMPT_TUNING, null, null, new PromptConfig(3, List.of(5, 6), "x"), base),
        create(Method.PREFIX_TUNING, null, null, PromptConfig.random(2), base),
        create(Method.HEAD, null, null, null, base));
    for (PeftClassifier driver : models) {
      ModelSpec spec = roundTrip(ModelSpec.of(dir.toString(), driver, JobConfigLoader.DEFAULTS.train()));
      PeftClassifier executor = spec.build(7);
      String m = driver.method().key();
      assertEquals(driver.method(), executor.method(), m);
      assertEquals(driver.params().names(), executor.params().names(), m);
      for (String name : driver.params().names()) {
        assertArrayEquals(driver.params().get(name).shape, executor.params().get(name).shape, m + " " + name);
      }
      assertEquals(driver.totalCount(), executor.totalCount(), m + ": same base (quantized or not)");
      executor.params().values().assign(driver.params().values());
      int[][] ids = {{1, 5, 7, 2}}, mask = {{1, 1, 1, 1}};
      assertEquals(driver.model().forward(ids, mask), executor.model().forward(ids, mask), m);
    }
  }

  /** A qlora executor builds on the JVM's NF4 base: no float copy of a layer linear, its NF4 weights shared. */
  @Test
  void aQloraExecutorSharesTheCachedNf4Base() throws Exception {
    Path dir = TestModels.tinyBertDir(tmp.resolve("tiny-nf4"), 8, 2, 4);
    BaseModel nf4 = BaseModel.load(dir.toString(), BaseStorage.NF4);
    assertSame(nf4, BaseModel.load(dir.toString(), BaseStorage.NF4));
    assertNotSame(nf4, BaseModel.load(dir.toString()));
    PackedTensors packed = assertInstanceOf(PackedTensors.class, nf4.weights());
    assertEquals(2 * 6, packed.nf4().size(), "six linears in each of two layers");
    for (String name : packed.keySet()) assertTrue(!packed.nf4().containsKey(name), name);
    PeftClassifier driver = create(Method.QLORA, new LoraConfig(2, 4, 0.0, List.of("query", "value"), false, "none", false),
        null, null, BaseModel.load(dir.toString()));
    PeftClassifier executor = ModelSpec.of(dir.toString(), driver, JobConfigLoader.DEFAULTS.train()).build(7);
    for (var l : executor.model().encoder().linears()) {
      QuantizedLinear q = assertInstanceOf(QuantizedLinear.class, l.base(), l.name());
      assertSame(packed.nf4(l.name() + ".weight"), q.packedWeight(), l.name());
    }
    executor.params().values().assign(driver.params().values());
    int[][] ids = {{1, 5, 7, 2}}, mask = {{1, 1, 1, 1}};
    assertEquals(0.0, driver.model().forward(ids, mask).sub(executor.model().forward(ids, mask)).amaxNumber().doubleValue(), 0.0,
        "the same logits as quantizing the float base");
  }

  private static PeftClassifier create(Method m, LoraConfig lora, Ia3Config ia3, PromptConfig prompt, BaseModel base) {
    return PeftClassifier.create(m, lora, ia3, prompt, base.config(), base.weights(), 2, Pooling.Mode.MEAN,
        DataType.FLOAT, 42);
  }

  private static ModelSpec roundTrip(ModelSpec spec) throws Exception {
    var bytes = new ByteArrayOutputStream();
    try (var out = new ObjectOutputStream(bytes)) { out.writeObject(spec); }
    try (var in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
      ModelSpec back = (ModelSpec) in.readObject();
      assertEquals(spec, back);
      return back;
    }
  }
}
