package dev.peftspark.core.config;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * One line of documentation per config key, and the README's key table built from it and from
 * {@link JobConfigLoader#DEFAULTS} (a test checks every key has a line and the README holds the table).
 */
public final class ConfigDocs {
  private ConfigDocs() {}

  public static final Map<String, String> DESCRIPTIONS = descriptions();

  private static Map<String, String> descriptions() {
    Map<String, String> d = new LinkedHashMap<>();
    d.put("model", "built-in model name (`minilm`: all-MiniLM-L6-v2), a Hugging Face model directory, or `random` (causal_lm: Hugging Face's initialisation of `model_config`; with `method: full` this is pretraining)");
    d.put("task", "`classification` or `causal_lm` (next-token prediction; eval reports loss, perplexity, tokens)");
    d.put("output_dir", "where the adapter, config.yaml, metrics.jsonl, eval.json and report.html go (train)");
    d.put("method", "`lora` (DoRA with `lora.use_dora`), `qlora` (LoRA on an NF4-quantized base), `ia3`, `prompt_tuning` (virtual input tokens), `prefix_tuning` (virtual keys and values in every layer), `full` (every weight) or `head` (classifier only)");
    d.put("runner", "`spark` (data-parallel on `spark.master`) or `local` (the single-JVM trainer, no Spark); `task: causal_lm` trains on Spark with `distributed.sync: gradient`");
    d.put("init_adapter", "start from a saved adapter directory instead of a fresh initialisation");
    d.put("model_config", "`model: random`: a Hugging Face config.json (LLaMA, Mistral, Qwen2 or GPT-2) giving the architecture and size");
    d.put("tokenizer", "causal_lm: the model directory's tokenizer.json when left out, `gpt2` (the demo GPT-2 byte-level BPE), or a tokenizer.json path");
    d.put("data.train", "training files (paths or URIs; a list, or one comma-separated string)");
    d.put("data.test", "files evaluated after training and by `eval`");
    d.put("data.format", "`auto` (by extension; causal_lm: .txt is plain text), `jsonl`, `json`, `csv` or `txt` (causal_lm)");
    d.put("data.text_field", "field holding the text");
    d.put("data.label_field", "field holding the label");
    d.put("data.empty_records", "records with empty text or no label: `skip` (counted) or `reject` (fail)");
    d.put("data.max_length", "tokens per example after truncation (causal_lm: tokens per row)");
    d.put("data.lm_format", "causal_lm records: `text` (documents), `instruction` (prompt/response; loss on the response only) or `tokenized` (`input_ids`, optional `labels` with -100)");
    d.put("data.prompt_field", "causal_lm instruction: field holding the prompt");
    d.put("data.response_field", "causal_lm instruction: field holding the response");
    d.put("data.template", "causal_lm instruction: text before the response with `{prompt}` where the prompt goes (none: `### Instruction:` / `### Response:`)");
    d.put("data.packing", "causal_lm: pack documents (each ending with EOS) into full rows, attention kept inside each document; `false`: one padded row per document");
    d.put("data.per_file", "causal_lm plain-text files: a whole file is one document (`false`: one per line)");
    d.put("lora.r", "adapter rank");
    d.put("lora.alpha", "lora_alpha; the update is scaled by alpha/r");
    d.put("lora.dropout", "dropout on the adapter input, in [0, 1)");
    d.put("lora.target_modules", "module-name suffixes to adapt (causal_lm: `lm_head` too), one regex, or `all-linear`; left at the default, a causal LM gets PEFT's default for its family (`q_proj, v_proj`; GPT-2 `c_attn`)");
    d.put("lora.use_rslora", "scale by alpha/sqrt(r) instead of alpha/r");
    d.put("lora.bias", "`none`, `lora_only` (the adapted linears' biases train too) or `all` (every bias of the model, LayerNorm biases included, as PEFT)");
    d.put("lora.init_lora_weights", "`true` (A kaiming-uniform, B zero) or `gaussian` (A ~ N(0, 1/r))");
    d.put("lora.layers_to_transform", "layer indices to adapt, e.g. `[4, 5]` (empty: every layer)");
    d.put("lora.rank_pattern", "rank per module, PEFT's matching: `{query: 16, 'layer\\.0\\..*value': 4}` (key = regex on a dotted suffix of the module name)");
    d.put("lora.alpha_pattern", "lora_alpha per module, matched as `rank_pattern`");
    d.put("lora.modules_to_save", "causal_lm: modules whose tensors train whole beside LoRA, matched as PEFT does (the module name ends with the entry), e.g. `[lm_head]`; saved under their own names");
    d.put("lora.use_dora", "DoRA: learn a magnitude per output row on top of LoRA's direction (saved as `lora_magnitude_vector`)");
    d.put("ia3.target_modules", "modules that get an IA3 scaling vector `ia3_l` (suffixes, one regex, or `all-linear`); left at the default, a causal LM gets PEFT's default for its family (`k_proj, v_proj, down_proj`; GPT-2 `c_attn, mlp.c_proj`)");
    d.put("ia3.feedforward_modules", "targets whose input is scaled instead of their output (PEFT: a plain name suffix, so `output.dense` also matches `attention.output.dense`); causal LMs with default targets: `down_proj` / `mlp.c_proj`");
    d.put("prompt.num_virtual_tokens", "virtual tokens: prepended to the input (`prompt_tuning`) or to every layer's keys and values (`prefix_tuning`)");
    d.put("prompt.init", "`random` (N(0, 1), PEFT's default) or `text` (prompt_tuning: the embeddings of `prompt.init_text`'s tokens, repeated to fill)");
    d.put("prompt.init_text", "the text for `prompt.init: text`, e.g. `Classify the sentiment of this review`");
    d.put("head.pooling", "sentence vector for the classifier: `mean` or `cls`");
    d.put("head.num_labels", "number of classes; 0 infers it from the training labels");
    d.put("train.epochs", "passes over the training data");
    d.put("train.max_steps", "stop after this many optimizer steps (-1: no limit)");
    d.put("train.batch_size", "examples per optimizer step");
    d.put("train.grad_accum", "micro-batches per step (must divide batch_size)");
    d.put("train.lr", "peak learning rate");
    d.put("train.optimizer", "`adamw` or `sgd`");
    d.put("train.weight_decay", "decoupled weight decay (AdamW) or L2 (SGD)");
    d.put("train.momentum", "SGD momentum");
    d.put("train.beta1", "AdamW beta1");
    d.put("train.beta2", "AdamW beta2");
    d.put("train.eps", "AdamW epsilon");
    d.put("train.grad_clip", "clip the global gradient L2 norm (0: off)");
    d.put("train.warmup_ratio", "fraction of steps with linear warmup");
    d.put("train.schedule", "after warmup: `linear`, `cosine` or `constant`");
    d.put("train.seed", "seed for initialisation, shuffling and dropout");
    d.put("train.log_every", "console progress period in steps (when not a terminal)");
    d.put("train.gradient_checkpointing", "causal LMs: keep only each layer's input and recompute its activations in backward (one layer's at a time; one more forward per step)");
    d.put("spark.master", "Spark master URL (runner: spark)");
    d.put("spark.partitions", "data partitions (0: Spark's default parallelism)");
    d.put("spark.storage_level", "Spark storage level of the cached tokenized partitions");
    d.put("distributed.sync", "`gradient` (adapter gradients summed every step; equals `runner: local`) or "
        + "`average` (local steps, then adapter and optimizer-moment averaging)");
    d.put("distributed.average_every", "local steps per partition between averaging (sync: average)");
    d.put("distributed.on_non_finite", "a NaN/Inf loss or gradient: `stop` the run or `skip` the step");
    d.put("distributed.aggregation_depth", "how a step's adapter gradients are summed (sync: gradient): `1` the "
        + "driver sums every partition's in partition order; `d` ≥ 2 sums fixed groups of consecutive partitions "
        + "on the executors in d - 1 rounds (a deterministic treeAggregate: same bits on reruns and retries; the "
        + "last bits may differ from depth 1)");
    d.put("checkpoint.every_steps", "write output_dir/checkpoints/step-N every N steps and resume from the "
        + "newest on rerun (0: off; runner: spark)");
    return Map.copyOf(d);
  }

  /** The Markdown table of every key, its default and its meaning, in declaration order. */
  public static String markdownTable() {
    StringBuilder b = new StringBuilder("| key | default | meaning |\n|---|---|---|\n");
    JobConfigLoader.flatten(JobConfigLoader.DEFAULTS).forEach((key, value) -> b.append("| `").append(key)
        .append("` | ").append(render(value)).append(" | ").append(DESCRIPTIONS.getOrDefault(key, "?"))
        .append(" |\n"));
    return b.toString();
  }

  static String render(Object v) {
    if (v == null) return "(none)";
    if (v instanceof List<?> l) return l.isEmpty() ? "`[]`" : l.stream().map(String::valueOf)
        .collect(Collectors.joining(", ", "`[", "]`"));
    return "`" + v + "`";
  }
}
