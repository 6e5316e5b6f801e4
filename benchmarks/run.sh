#!/usr/bin/env bash
# The runs behind the committed CSVs (see README.md). Needs the official MotionBERT checkout at
# $OFFICIAL (lib/model/DSTformer.py of commit dccfe7b; it is not part of posezoo).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
# The CSVs below were measured with glibc's default allocator; the *_tuned.csv ones at the end with
# the allocator settings posezoo's tools apply by default (posezoo/_runtime.py).
export POSEZOO_DEFAULT_ALLOCATOR=1
OFFICIAL=${OFFICIAL:-/tmp/official/MotionBERT}
BENCH="$PY tools/benchmark.py dstformer-lift --official motionbert=$OFFICIAL --threads 2"
$BENCH --mode infer --batch 1 --frames 243 --warmup 1 --repeats 5 --csv benchmarks/dstformer_infer_b1_t243.csv
$BENCH --mode infer --batch 8 --frames 81 --warmup 1 --repeats 2 --no-memory --csv benchmarks/dstformer_infer_b8_t81.csv
$BENCH --mode train --batch 1 --frames 243 --warmup 1 --repeats 2 --no-memory --csv benchmarks/dstformer_train_b1_t243.csv
# Full-size training fits only with activation checkpointing (the official model would need more
# than this shared 23 GB machine has at B=8, T=243): posezoo alone, memory probe only (one step).
$PY tools/benchmark.py dstformer-lift --threads 2 --mode train --batch 8 --frames 243 --grad-checkpointing \
    --repeats 0 --csv benchmarks/dstformer_train_b8_t243_ckpt.csv
$BENCH --mode infer --batch 8 --frames 243 --warmup 1 --repeats 3 --no-memory --csv benchmarks/dstformer_infer_b8_t243.csv

# VideoPose3D TCN, PoseFormer, PoseFormerV2 against their official code (see README.md for the
# checkouts; PoseFormerV2's needs `pip install torch-dct einops`, PoseFormer's einops).
OFFICIAL_ROOT=${OFFICIAL_ROOT:-/tmp/official}
TCN="$PY tools/benchmark.py tcn-243f-lift --official videopose3d=$OFFICIAL_ROOT/VideoPose3D --threads 2 --frames 243"
# whole sequences (posezoo 'sequence' mode vs TemporalModel on the edge-padded sequence)
$TCN --mode infer --batch 8 --warmup 1 --repeats 5 --csv benchmarks/tcn_infer_b8_t243.csv
$TCN --mode infer --batch 1 --warmup 1 --repeats 10 --csv benchmarks/tcn_infer_b1_t243.csv
# one output frame per 243-frame window (posezoo 'window' mode vs TemporalModelOptimized1f)
$TCN --override mode=window --mode infer --batch 64 --warmup 1 --repeats 5 --csv benchmarks/tcn_window_infer_b64.csv
$TCN --override mode=window --mode train --batch 64 --warmup 1 --repeats 5 --csv benchmarks/tcn_window_train_b64.csv
# PoseFormer(V2): their many small ops each end in an OpenMP barrier, so on a 2-core machine shared
# with other jobs a step takes 0.3 s or 3 s depending on the load (both implementations): run them
# on a quiet machine (or with --threads 1).
PF="$PY tools/benchmark.py poseformer-81f-lift --official poseformer=$OFFICIAL_ROOT/PoseFormer --threads 2 --batch 8"
$PF --mode infer --warmup 1 --repeats 8 --csv benchmarks/poseformer_infer_b8_t81.csv
$PF --mode train --warmup 1 --repeats 5 --csv benchmarks/poseformer_train_b8_t81.csv
PF2="$PY tools/benchmark.py poseformerv2-243f-lift --official poseformerv2=$OFFICIAL_ROOT/PoseFormerV2 --threads 2 --batch 8"
$PF2 --mode infer --warmup 1 --repeats 8 --csv benchmarks/poseformerv2_infer_b8_t243.csv
$PF2 --mode train --warmup 1 --repeats 5 --csv benchmarks/poseformerv2_train_b8_t243.csv

# posezoo's default runtime: glibc keeps large freed blocks (both implementations of a run share it)
export POSEZOO_DEFAULT_ALLOCATOR=0
$BENCH --mode infer --batch 8 --frames 243 --warmup 1 --repeats 3 --no-memory --csv benchmarks/dstformer_infer_b8_t243_tuned.csv
$PY tools/benchmark.py dstformer-lift --threads 2 --mode train --batch 8 --frames 243 --grad-checkpointing \
    --repeats 0 --csv benchmarks/dstformer_train_b8_t243_ckpt_tuned.csv

# bf16 (issue 12): posezoo in bf16 (posezoo.create(dtype="bfloat16"); training: bf16 autocast) against official fp32
export POSEZOO_DEFAULT_ALLOCATOR=1
BF="$PY tools/benchmark.py dstformer-lift --official motionbert=$OFFICIAL --threads 2 --dtype bf16 --no-memory --warmup 1"
$BF --mode infer --batch 1 --frames 243 --repeats 3 --csv benchmarks/bf16_dstformer_infer_b1_t243.csv
$BF --mode infer --batch 8 --frames 243 --repeats 2 --csv benchmarks/bf16_dstformer_infer_b8_t243.csv
$BF --mode train --batch 1 --frames 243 --repeats 2 --csv benchmarks/bf16_dstformer_train_b1_t243.csv
$TCN --dtype bf16 --no-memory --mode infer --batch 8 --warmup 1 --repeats 5 --csv benchmarks/bf16_tcn_infer_b8_t243.csv
$PF --dtype bf16 --no-memory --mode infer --warmup 1 --repeats 5 --threads 1 --csv benchmarks/bf16_poseformer_infer_b8_t81.csv
$PF2 --dtype bf16 --no-memory --mode infer --warmup 1 --repeats 5 --threads 1 --csv benchmarks/bf16_poseformerv2_infer_b8_t243.csv
