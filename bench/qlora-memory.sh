#!/usr/bin/env bash
# QLoRA (or LoRA) training steps at TinyLlama-1.1B's shape with random weights: peak RSS (VmHWM) and CPU per
# step, run with the memory recipe of BENCHMARKS.md ("Memory at TinyLlama-1.1B's shape (issue 5)").
#   bench/qlora-memory.sh [qlora|lora] [more bench flags, e.g. --steps 3 --warmup 1]
# Peak RSS does not depend on the machine's load; CPU per step mostly does not; wall time does.
# Override PEFT_SPARK_JAVA_OPTS / PEFT_SPARK_OFFHEAP to measure what each JVM flag gives.
set -euo pipefail
root="$(cd -P "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
method="${1:-qlora}"
[ $# -gt 0 ] && shift

# glibc: two malloc arenas, and every buffer over 64 KiB its own mapping (returned to the system when freed)
export MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=65536
# JVM: a 48 MiB heap (the model lives off-heap); Serial GC (no GC threads or card tables to speak of); C2 only
# (no tiered C1 code and profiles: less code cache and metaspace, C2-quality loops); small thread stacks and
# code cache reservation; no perf-data file
export PEFT_SPARK_JAVA_OPTS="${PEFT_SPARK_JAVA_OPTS:--Xmx48m -XX:+UseSerialGC -XX:-TieredCompilation -Xss256k -XX:ReservedCodeCacheSize=24m -XX:-UsePerfData}"
if [ "$method" = qlora ]; then export PEFT_SPARK_OFFHEAP="${PEFT_SPARK_OFFHEAP:-2G}"; else export PEFT_SPARK_OFFHEAP="${PEFT_SPARK_OFFHEAP:-8G}"; fi

exec "$root/bin/peft-spark" bench --arch llama --hidden 2048 --layers 22 --heads 32 --kv-heads 4 --intermediate 5632 \
  --vocab 32000 --seq 256 --batch 1 --rank 8 --targets q_proj,v_proj --steps 1 --warmup 0 --threads 2 \
  --method "$method" --workspace false --gradient-checkpointing true --loss-chunk-rows 32 "$@"
