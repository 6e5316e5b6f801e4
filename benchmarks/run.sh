#!/usr/bin/env bash
# The runs behind the committed CSVs (see README.md). Needs the official MotionBERT checkout at
# $OFFICIAL (lib/model/DSTformer.py of commit dccfe7b; it is not part of posezoo).
set -euo pipefail
cd "$(dirname "$0")/.."
OFFICIAL=${OFFICIAL:-/tmp/official/MotionBERT}
BENCH="python tools/benchmark.py dstformer-lift --official motionbert=$OFFICIAL --threads 2"
$BENCH --mode infer --batch 1 --frames 243 --warmup 1 --repeats 5 --csv benchmarks/dstformer_infer_b1_t243.csv
$BENCH --mode infer --batch 8 --frames 81 --warmup 1 --repeats 2 --no-memory --csv benchmarks/dstformer_infer_b8_t81.csv
$BENCH --mode train --batch 1 --frames 243 --warmup 1 --repeats 2 --no-memory --csv benchmarks/dstformer_train_b1_t243.csv
# Full-size training fits only with activation checkpointing (the official model would need more
# than this shared 23 GB machine has at B=8, T=243): posezoo alone, memory probe only (one step).
python tools/benchmark.py dstformer-lift --threads 2 --mode train --batch 8 --frames 243 --grad-checkpointing \
    --repeats 0 --csv benchmarks/dstformer_train_b8_t243_ckpt.csv
$BENCH --mode infer --batch 8 --frames 243 --warmup 1 --repeats 1 --no-memory --csv benchmarks/dstformer_infer_b8_t243.csv
