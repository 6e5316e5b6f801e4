#!/usr/bin/env python
"""Benchmark posezoo models: ``posezoo benchmark`` (posezoo/benchmark.py) run from a checkout.

    python tools/benchmark.py dstformer-lift --batch 8 --frames 243 --mode infer --repeats 5 \\
        --csv benchmarks/out.csv --official motionbert=/tmp/official/MotionBERT [--dtype bf16]

See ``posezoo benchmark --help`` and benchmarks/README.md. Errors print one line and exit 2.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's posezoo first


def main(argv: list[str] | None = None) -> list[dict]:
    from posezoo.benchmark import main as benchmark

    return benchmark(sys.argv[1:] if argv is None else argv, prog="tools/benchmark.py")


if __name__ == "__main__":
    from posezoo._runtime import reexec_with_tuned_allocator

    reexec_with_tuned_allocator()  # large activations without page faults: see posezoo/_runtime.py
    from posezoo.cli import run_script

    sys.exit(run_script("tools/benchmark.py", main))
