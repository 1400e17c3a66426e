#!/bin/sh
# Runs every benchmark configuration REPEAT times (default 2), one JSON line each, on Debian's Python.
# Usage: bench/pytorch/run_all.sh [IDS.jsonl] [WEIGHTS.safetensors] [THREADS]
set -eu
here=$(dirname "$0")
ids=${1:-/tmp/bench/sentiment-train-ids.jsonl}
weights=${2:-/tmp/bench/minilm.safetensors}
threads=${3:-2}
repeat=${REPEAT:-2}
set -- --threads "$threads"
if [ -f "$weights" ]; then set -- "$@" --weights "$weights"; fi
for r in $(seq "$repeat"); do
  /usr/bin/python3 "$here/minilm_lora_bench.py" "$ids" "$@" --mode train --bucket
  /usr/bin/python3 "$here/minilm_lora_bench.py" "$ids" "$@" --mode train
  /usr/bin/python3 "$here/minilm_lora_bench.py" "$ids" "$@" --mode embed --bucket
  /usr/bin/python3 "$here/minilm_lora_bench.py" "$ids" "$@" --mode embed
done
