package dev.peftspark.datasets.tools;

import dev.peftspark.datasets.lm.BrownCorpus;
import dev.peftspark.datasets.lm.Gpt2Bpe;
import dev.peftspark.datasets.lm.LmBatcher;
import dev.peftspark.datasets.lm.LmDataOptions;
import dev.peftspark.datasets.lm.LmExample;
import dev.peftspark.datasets.lm.LmRecords;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Prints the Brown corpus's size per genre in documents, words and GPT-2 BPE tokens, the packed rows at a few
 * max lengths, and the CPU time of reading + tokenizing it all. A command-line tool, not a test:
 *
 * <pre>
 * mvn -q -o -pl datasets -am test-compile
 * java -cp "datasets/target/test-classes:datasets/target/classes:core/target/classes:$(cat cp.txt)" \
 *   -Dpeft.spark.data.cache=/work/shared/data-cache dev.peftspark.datasets.tools.BrownTokenStats
 * </pre>
 * where cp.txt is {@code mvn -q -o -pl datasets dependency:build-classpath -Dmdep.outputFile=cp.txt
 * -Dmdep.includeScope=test} (run with -am if core is not in the local repository).
 */
public final class BrownTokenStats {
  private BrownTokenStats() {}

  public static void main(String[] args) {
    var bean = ManagementFactory.getThreadMXBean();
    long cpu0 = bean.getCurrentThreadCpuTime();
    List<BrownCorpus.Document> docs = BrownCorpus.demo();
    long cpu1 = bean.getCurrentThreadCpuTime();
    try (Gpt2Bpe bpe = Gpt2Bpe.demo()) {
      long cpu2 = bean.getCurrentThreadCpuTime();
      Map<String, long[]> byGenre = new TreeMap<>();
      long tokens = 0;
      for (BrownCorpus.Document d : docs) {
        int n = bpe.encode(d.text()).length + 1;   // + EOS
        long[] s = byGenre.computeIfAbsent(d.genre(), g -> new long[3]);
        s[0]++;
        s[1] += d.text().split("\\s+").length;
        s[2] += n;
        tokens += n;
      }
      long cpu3 = bean.getCurrentThreadCpuTime();
      System.out.printf("%-16s %5s %9s %11s%n", "genre", "docs", "words", "gpt2_tokens");
      byGenre.forEach((g, s) -> System.out.printf("%-16s %5d %9d %11d%n", g, s[0], s[1], s[2]));
      System.out.printf("%-16s %5d %9s %11d%n", "all", docs.size(), "", tokens);
      System.out.printf("cpu: read+detokenize %.2f s, load tokenizer %.2f s, encode %.2f s%n",
          (cpu1 - cpu0) / 1e9, (cpu2 - cpu1) / 1e9, (cpu3 - cpu2) / 1e9);
      List<LmExample> ex = LmRecords.read(List.of("demo:brown"), LmDataOptions.defaults(), bpe);
      for (int len : new int[] {128, 256, 512}) {
        LmBatcher b = new LmBatcher(ex, len, 8, true);
        System.out.printf("max_length %d: %d packed rows, %d targets%n", len, b.rows(), b.targetTokens());
      }
    }
  }
}
