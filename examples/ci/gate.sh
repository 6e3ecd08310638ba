#!/usr/bin/env bash
# CI gate: train (or reuse a cached run), export, bench with budgets and a baseline.
# Used by github-actions.yml; runs the same on a laptop. Settings come from the environment:
#   RUN_DIR (runs/ci)  RECIPE (models/digits_mlp.toml)  EPOCHS (the recipe's)
#   BASELINE (baseline/bench.json, used when present)  MAX_REGRESSION (10)  REPEAT (3)
# Under GitHub Actions (GITHUB_ACTIONS=true) edgekit prints each violated budget and each
# regression as an ::error:: annotation and appends its markdown table to the job summary.
set -euo pipefail
RUN_DIR=${RUN_DIR:-runs/ci}
RECIPE=${RECIPE:-models/digits_mlp.toml}
BASELINE=${BASELINE:-baseline/bench.json}

if [ -f "$RUN_DIR/run.json" ]; then
  echo "reusing the trained run in $RUN_DIR"
else
  edgekit train "$RECIPE" --out "$RUN_DIR" ${EPOCHS:+--epochs "$EPOCHS"}
fi

# Fails (exit 1) if any artifact does not match Keras within tolerance.
edgekit export "$RUN_DIR" --quantize float32,int8 --onnx --force

compare=()
if [ -f "$BASELINE" ]; then
  compare=(--baseline "$BASELINE" --max-regression "${MAX_REGRESSION:-10}")
fi
# Fails (exit 1) on a violated budget or a significant latency regression. junit.xml holds a
# test case per measurement, budget and baseline check.
edgekit bench "$RUN_DIR/export" --batch 1,32 --repeat "${REPEAT:-3}" \
  --budget "int8:p95_ms<=1" --budget "accuracy_drop<=1" --budget "size_kb<=100" \
  --json bench.json --markdown bench.md --junit junit.xml "${compare[@]}"
