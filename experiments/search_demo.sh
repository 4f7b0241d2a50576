#!/usr/bin/env bash
# The search method end to end on the synthetic set (bench/search_demo.py says what it
# runs; BUILD_NOTES "The search demo" gives its scale, budget and figures). Resumable:
# rerun the same command after a kill.
#   bash experiments/search_demo.sh [--small] [--workdir DIR] [--publish]
set -euo pipefail
cd "$(dirname "$0")/.."
exec python bench/search_demo.py "$@"
