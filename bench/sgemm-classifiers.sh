#!/usr/bin/env bash
# Measures sgemm GFLOP/s with each nd4j-native build that runs on this CPU (the numbers behind the choice of
# nd4j.classifier in pom.xml; see BENCHMARKS.md). Usage: bench/sgemm-classifiers.sh [sizes...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sizes=("${@:-512 1024 2048}")
cd "$root"
mvn -q -B -DskipTests package -pl spark-runner -am >&2
jar="$(ls spark-runner/target/peft-spark-*.jar | grep -v original | head -1)"
for c in linux-x86_64 linux-x86_64-avx2 linux-x86_64-avx512 linux-x86_64-onednn linux-x86_64-onednn-avx2 linux-x86_64-onednn-avx512; do
  cp_file="$(mktemp)"
  # -am resolves the sibling modules from the reactor; every module writes the file, spark-runner (last) wins
  mvn -q -B compile dependency:build-classpath -pl spark-runner -am -Dnd4j.classifier="$c" \
    -Dmdep.outputFile="$cp_file" >&2
  # the project's own classes first, then the dependencies resolved for this classifier (not the shaded jar,
  # which carries the default classifier's natives)
  cp="core/target/classes:datasets/target/classes:spark-runner/target/classes:$(cat "$cp_file")"
  for n in ${sizes[@]}; do
    out="$(java @conf/jvm.options -cp "$cp" dev.peftspark.spark.cli.Main bench sgemm --size "$n" 2>/dev/null)"
    echo "{\"classifier\": \"$c\", ${out#\{}"
  done
  rm -f "$cp_file"
done
