package dev.peftspark.datasets;

import java.util.List;

/**
 * Token ids per text, [CLS] ... [SEP], unpadded (lengths vary).
 *
 * @param truncated how many texts were cut to the maximum length
 */
public record Encoding(List<int[]> ids, int truncated) {
  public Encoding {
    ids = List.copyOf(ids);
  }

  public int size() {
    return ids.size();
  }

  public int[] ids(int i) {
    return ids.get(i);
  }
}
