#!/usr/bin/env bash
# peft-spark vs PyTorch, back to back, on the shapes issue 4 names; one JSON line per run (ours, then torch).
#   bench/pytorch/compare_lm.sh [THREADS] [REPEAT]
#   PRECISION=bf16 bench/pytorch/compare_lm.sh ...   ours with --gemm-precision bf16, torch with --autocast bf16
#   WARMUP=10 bench/pytorch/compare_lm.sh ...         untimed steps before the timed ones, both sides (default 2)
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
threads="${1:-2}"; repeat="${2:-1}"; precision="${PRECISION:-fp32}"; warmup="${WARMUP:-2}"
autocast=off; [ "$precision" = bf16 ] && autocast=bf16
llama="--arch llama --hidden 512 --layers 4 --heads 8 --kv-heads 8 --intermediate 1376 --vocab 8000 --seq 256 --batch 4 --rank 8 --targets q_proj,v_proj --steps 10 --threads $threads"
gpt2="--arch gpt2 --hidden 768 --layers 12 --heads 12 --vocab 50257 --seq 256 --batch 1 --rank 8 --targets c_attn --steps 10 --threads $threads"
for _ in $(seq "$repeat"); do
  for args in "$llama --method lora" "$llama --method full" "$gpt2 --method lora"; do
    "$root/bin/peft-spark" bench $args --warmup "$warmup" --gemm-precision "$precision" 2>/dev/null | tail -1
    /usr/bin/python3 "$root/bench/pytorch/llama_bench.py" $args --warmup "$warmup" --autocast "$autocast"
    uptime >&2
  done
done
