#!/usr/bin/env bash
# QLoRA through the `train` command on a Hugging Face directory of TinyLlama-1.1B's shape (random BF16 weights,
# 2.2 GB, written once by bench/write-tinyllama-dir.py under $PEFT_SPARK_BENCH_DIR, default /tmp/peft-spark-qlora-train):
# 2 steps of seq 256, batch 1, LoRA r=8 on q_proj,v_proj, gradient checkpointing; peak RSS from /usr/bin/time -v
# ("Maximum resident set size", the java process: bin/peft-spark execs it). BENCHMARKS.md "QLoRA through `train`".
#   bench/qlora-train-memory.sh [local|spark]     (spark: runner spark on local[1], one partition)
# Override PEFT_SPARK_JAVA_OPTS / PEFT_SPARK_OFFHEAP to try other flags.
set -euo pipefail
root="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
runner="${1:-local}"
dir="${PEFT_SPARK_BENCH_DIR:-/tmp/peft-spark-qlora-train}"
[ -f "$dir/model/model.safetensors" ] || python3 "$root/bench/write-tinyllama-dir.py" "$dir/model"

spark=""
[ "$runner" = spark ] && spark=$'spark:\n  master: local[1]\n  partitions: 1'
cat > "$dir/qlora-$runner.yaml" <<YAML
task: causal_lm
model: $dir/model
method: qlora
runner: $runner
$spark
output_dir: $dir/out-$runner
data:
  train: [$dir/train.txt]
  max_length: 256
train:
  batch_size: 1
  max_steps: 2
  epochs: 1
  log_every: 1
  gradient_checkpointing: true
lora:
  r: 8
  alpha: 16
  target_modules: [q_proj, v_proj]
YAML
rm -rf "$dir/out-$runner"

# the memory flags of bench/qlora-memory.sh, with the heap each runner needs (Spark's memory manager wants >= 450 MiB)
export MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536
heap=128m; [ "$runner" = spark ] && heap=640m
export PEFT_SPARK_JAVA_OPTS="${PEFT_SPARK_JAVA_OPTS:--Xmx$heap -XX:+UseSerialGC -XX:-TieredCompilation -Xss256k -XX:ReservedCodeCacheSize=24m -XX:-UsePerfData}"
export PEFT_SPARK_OFFHEAP="${PEFT_SPARK_OFFHEAP:-2G}"
echo "load $(cut -d' ' -f1-3 /proc/loadavg); PEFT_SPARK_JAVA_OPTS=$PEFT_SPARK_JAVA_OPTS PEFT_SPARK_OFFHEAP=$PEFT_SPARK_OFFHEAP" >&2
/usr/bin/time -v "$root/bin/peft-spark" train --config "$dir/qlora-$runner.yaml"
