package dev.peftspark.core.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A file above 2 GiB, so offsets beyond what an int or one mapping can hold are exercised. Writes
 * about 2.3 GB to disk, hence opt-in: {@code mvn test -Dtest=SafeTensorsLargeFileTest -Dpeftspark.largeTests=true}.
 */
@EnabledIfSystemProperty(named = "peftspark.largeTests", matches = "true")
class SafeTensorsLargeFileTest {
  private static final int BLOCK = 256 << 20;
  @TempDir Path dir;

  @Test
  void readsTensorsPastTwoGibibytes() throws IOException {
    ByteBuffer block = ByteBuffer.allocateDirect(BLOCK);
    for (int i = 0; i < BLOCK; i++) {
      block.put(i, (byte) (i * 31 + 7));
    }
    List<RawTensor> tensors = new ArrayList<>();
    for (int k = 0; k < 9; k++) {
      tensors.add(new RawTensor("block" + k, DType.U8, new long[] {BLOCK}, block));
    }
    ByteBuffer tail = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN)
        .putFloat(1.5f).putFloat(-2f).putFloat(3.25f).putFloat(1e-7f).flip();
    tensors.add(new RawTensor("tail", DType.F32, new long[] {2, 2}, tail));
    Path file = dir.resolve("big.safetensors");
    SafeTensors.write(file, tensors, null);
    assertTrue(Files.size(file) > 9L * BLOCK);

    try (SafeTensors st = SafeTensors.open(file)) {
      TensorInfo last = st.info("tail");
      assertEquals(9L * BLOCK, last.begin());
      assertTrue(last.begin() > Integer.MAX_VALUE);
      assertArrayEquals(new float[] {1.5f, -2f, 3.25f, 1e-7f}, st.load("tail").data().asFloat());
      ByteBuffer raw = st.raw("block8"); // starts at 2 GiB
      assertEquals((byte) (12345 * 31 + 7), raw.get(12345));
      INDArray loaded = st.load("block8");
      assertEquals((BLOCK - 1) * 31 + 7 & 0xFF, loaded.getInt(BLOCK - 1));
    }
  }
}
