package dev.peftspark.spark.job;

import dev.peftspark.core.model.LlamaConfig;
import dev.peftspark.core.model.PackedTensors;
import dev.peftspark.core.peft.Method;
import dev.peftspark.core.peft.PeftCausalLm;
import dev.peftspark.core.peft.lora.LoraConfig;
import dev.peftspark.spark.TestModels;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** One cached base per storage form; the NF4 one (random or a directory) gives today's qlora model exactly. */
class CausalLmBaseTest {
  @TempDir static Path tmp;
  private static final int[][] IDS = {{1, 5, 7, 2, 9}}, MASK = {{1, 1, 1, 1, 1}};

  private static PeftCausalLm qlora(CausalLmBase base) {
    return PeftCausalLm.create(Method.QLORA, new LoraConfig(2, 4, 0.0, List.of("all-linear"), false, "none", false),
        null, base.builder(), DataType.FLOAT, 3);
  }

  private static void assertSameModel(CausalLmBase floats, CausalLmBase nf4) {
    PackedTensors packed = assertInstanceOf(PackedTensors.class, nf4.weights());
    assertEquals(2 * 7, packed.nf4().size(), "seven linears in each of two layers");
    for (String name : packed.keySet()) assertTrue(!packed.nf4().containsKey(name) && !name.endsWith("_proj.weight"), name);
    PeftCausalLm today = qlora(floats), onNf4 = qlora(nf4);
    assertEquals(today.totalCount(), onNf4.totalCount());
    assertEquals(0.0, today.model().logits(IDS, MASK).sub(onNf4.model().logits(IDS, MASK)).amaxNumber().doubleValue(), 0.0);
  }

  @Test
  void randomBaseWithQloraIsQuantizedAsItIsGenerated() throws Exception {
    Path config = tmp.resolve("config.json");
    Files.writeString(config, LlamaConfig.llama(40, 64, 96, 2, 4, 2, 32, false).toJson("float32").toString());
    CausalLmBase nf4 = CausalLmBase.load(CausalLmBase.RANDOM, config.toString(), 9, BaseStorage.NF4);
    assertSame(nf4, CausalLmBase.load(CausalLmBase.RANDOM, config.toString(), 9, BaseStorage.NF4));
    CausalLmBase floats = CausalLmBase.load(CausalLmBase.RANDOM, config.toString(), 9);
    assertNotSame(nf4, floats);
    assertSameModel(floats, nf4);
  }

  @Test
  void directoryBaseWithQloraKeepsItsLayerLinearsInNf4Only() throws Exception {
    Path dir = TestModels.tinyLlamaDir(tmp.resolve("tiny-llama"));
    CausalLmBase nf4 = CausalLmBase.load(dir.toString(), null, 0, BaseStorage.NF4);
    assertEquals(dir.toString(), nf4.name());
    assertSameModel(CausalLmBase.load(dir.toString(), null, 0), nf4);
  }
}
