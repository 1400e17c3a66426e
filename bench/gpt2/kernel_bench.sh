#!/usr/bin/env bash
# GPT-2 kernels alone (KernelBench.java) against a checkout's classes, e.g. to compare two builds back to back:
#   bench/gpt2/kernel_bench.sh [THREADS] [CHECKOUT] [gpt2|llama]   (CHECKOUT built with mvn -q -o -DskipTests package;
#   default: this one; llama: the LLaMA bench shape's RMSNorm, RoPE and head + loss)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
threads="${1:-1}"; dir="${2:-$(cd "$here/../.." && pwd)}"
jar="$(ls "$dir"/spark-runner/target/peft-spark-*.jar | grep -v original | head -1)"
cp="$dir/core/target/classes:$jar:$(cat "$dir/spark-runner/target/local-classpath.txt")"
out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
javac -cp "$cp" -d "$out" "$here/KernelBench.java"
java @"$dir/conf/jvm.options" -Xmx8g -Dorg.bytedeco.javacpp.maxbytes=8G -cp "$out:$cp" KernelBench "$threads" "${3:-gpt2}" 2>&1 | grep -E "per call|Exception|Error"
