package dev.peftspark.core.config;

import java.util.List;

/**
 * One training / evaluation job, exactly as written in a YAML config (keys in snake_case there).
 * Every field has a default so a config names only what it changes; {@code JobConfigLoader} binds YAML,
 * applies {@code --set key=value} overrides and validates. Nested records mirror the YAML sections.
 */
public record JobConfig(
    String model,          // built-in name ("minilm"), a Hugging Face model directory URI, or "random" (causal_lm)
    String task,           // classification | causal_lm
    String outputDir,      // where adapter, metrics.jsonl, eval.json, report.html go
    String method,         // lora | qlora | ia3 | prompt_tuning | prefix_tuning | full | head
    String runner,         // spark (default: data-parallel, spark.master) | local (the single-JVM trainer)
    String initAdapter,    // start from a saved adapter directory (null: fresh init)
    String modelConfig,    // model: random: the config.json giving the architecture and size
    String tokenizer,      // causal_lm: null (the model directory's tokenizer.json) or "gpt2" (the demo GPT-2 BPE)
    Data data,
    Lora lora,
    Ia3 ia3,
    Prompt prompt,
    Head head,
    Train train,
    Spark spark,
    Distributed distributed,
    Checkpoint checkpoint) {

  public record Data(
      List<String> train,      // file URIs (file://, hdfs://, plain paths); several are concatenated
      List<String> test,       // evaluated after training
      String format,           // auto | jsonl | json | csv (auto: by file extension)
      String textField,        // default "text"
      String labelField,       // default "label"
      String emptyRecords,     // skip | reject: records with empty text or null label
      int maxLength,           // tokens per example after truncation (default 128); causal_lm: tokens per row
      String lmFormat,         // causal_lm: text | instruction | tokenized
      String promptField,      // causal_lm instruction: field holding the prompt
      String responseField,    // causal_lm instruction: field holding the response (the only tokens with loss)
      String template,         // causal_lm instruction: text before the response, {prompt} marks the prompt
      boolean packing,         // causal_lm: pack documents into full rows (true) or one padded row each
      boolean perFile) {       // causal_lm plain-text files: a whole file is one document (else one per line)
    /** Classification's keys; the causal-LM keys at their defaults. */
    public Data(List<String> train, List<String> test, String format, String textField, String labelField,
                String emptyRecords, int maxLength) {
      this(train, test, format, textField, labelField, emptyRecords, maxLength, "text", "prompt", "response", null,
          true, false);
    }
  }

  public record Lora(
      int r,                       // rank (default 8)
      double alpha,                // lora_alpha (default 8)
      double dropout,              // lora_dropout on the adapter input (default 0.0)
      List<String> targetModules,  // module-name suffixes, one regex, or "all-linear" (default query, value)
      boolean useRslora,           // scaling alpha/sqrt(r) instead of alpha/r
      String bias,                 // none | lora_only | all (PEFT's: which biases train too)
      boolean useDora,             // DoRA: a trainable magnitude per output row
      String initLoraWeights,      // true (kaiming-uniform A) | gaussian (A ~ N(0, 1/r))
      List<String> layersToTransform,          // layer indices to adapt (empty: all)
      java.util.Map<String, String> rankPattern,   // module regex → rank (PEFT's rank_pattern)
      java.util.Map<String, String> alphaPattern,  // module regex → lora_alpha (PEFT's alpha_pattern)
      List<String> modulesToSave) {  // causal_lm: modules trained whole beside LoRA, e.g. lm_head (PEFT's)
    /** Plain LoRA (use_dora false). */
    public Lora(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora, String bias) {
      this(r, alpha, dropout, targetModules, useRslora, bias, false);
    }

    /** Default init, every layer, no per-module patterns. */
    public Lora(int r, double alpha, double dropout, List<String> targetModules, boolean useRslora, String bias,
                boolean useDora) {
      this(r, alpha, dropout, targetModules, useRslora, bias, useDora, "true", List.of(), java.util.Map.of(),
          java.util.Map.of(), List.of());
    }
  }

  public record Ia3(
      List<String> targetModules,       // modules that get a scaling vector (default key, value, output.dense)
      List<String> feedforwardModules) {} // the targets whose input is scaled (default output.dense)

  public record Prompt(
      int numVirtualTokens,   // virtual tokens (prompt_tuning: in front of the input; prefix_tuning: per layer)
      String init,            // random | text (prompt_tuning: the embeddings of init_text's tokens)
      String initText) {}     // text for init: text

  public record Head(
      String pooling,      // mean | cls
      int numLabels) {}    // 0: inferred from the training labels

  public record Train(
      int epochs,              // passes over the training data (default 1)
      int maxSteps,            // stop after this many optimizer steps (-1: no limit)
      int batchSize,           // examples per optimizer step (default 32)
      int gradAccum,           // micro-batches per optimizer step (batch_size is split into them)
      double lr,               // peak learning rate
      String optimizer,        // adamw | sgd
      double weightDecay,      // decoupled (AdamW) / L2 (SGD)
      double momentum,         // SGD momentum
      double beta1, double beta2, double eps,
      double gradClip,         // global L2 norm clip (0: off)
      double warmupRatio,      // fraction of steps with linear warmup
      String schedule,         // linear | cosine | constant (after warmup)
      long seed,
      int logEvery,            // console log period in steps
      boolean gradientCheckpointing) {   // causal LMs: recompute each layer's activations in backward

    /** Gradient checkpointing off (its default). */
    public Train(int epochs, int maxSteps, int batchSize, int gradAccum, double lr, String optimizer, double weightDecay,
                 double momentum, double beta1, double beta2, double eps, double gradClip, double warmupRatio,
                 String schedule, long seed, int logEvery) {
      this(epochs, maxSteps, batchSize, gradAccum, lr, optimizer, weightDecay, momentum, beta1, beta2, eps, gradClip,
          warmupRatio, schedule, seed, logEvery, false);
    }
  }

  public record Spark(
      String master,           // default local[*]; spark-submit's --master wins
      int partitions,          // 0: default parallelism
      String storageLevel) {}  // how tokenized partitions are cached (e.g. MEMORY_AND_DISK_SER)

  public record Distributed(
      String sync,             // gradient (sum every step) | average (parameter averaging)
      int averageEvery,        // local steps between averaging (sync: average)
      String onNonFinite,      // stop | skip: a NaN/Inf loss or gradient
      int aggregationDepth) {} // 1: the driver sums every partition's gradient; ≥ 2: a fixed tree on the executors

  public record Checkpoint(
      int everySteps) {}       // 0: none; else output_dir/checkpoints/step-N every N steps (runner: spark)
}
