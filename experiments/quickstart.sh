#!/usr/bin/env bash
# Trains, evaluates and exports the quickstart model; generates the synthetic dataset
# first if it is not there. Rerunning resumes the training where it stopped.
#   bash experiments/quickstart.sh [run_dir]      (default runs/quickstart)
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=${1:-runs/quickstart}
echo "== train (generates the synthetic dataset first if needed)"
python -m deeplab_dpc.train --flagfile=experiments/quickstart.flags --train_logdir="$run_dir"
# The model was trained at half size: evaluate and serve at that scale too.
echo "== eval"
python -m deeplab_dpc.eval --checkpoint_dir="$run_dir" --eval_logdir="$run_dir/eval" \
  --eval_scales=0.5 --max_number_of_evaluations=1
echo "== export"
python -m deeplab_dpc.export --checkpoint_path="$run_dir" --export_path="$run_dir/export" \
  --inference_scales=0.5
echo "Done: metrics in $run_dir/eval/metrics.json, SavedModel in $run_dir/export"
