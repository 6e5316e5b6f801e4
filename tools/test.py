"""Evaluate a trained posezoo model and write a results JSON: ``posezoo test`` run from a checkout.

    python tools/test.py CONFIG_OR_NAME --checkpoint C [--out results.json] [--cfg-options k=v ...]

See ``posezoo test --help`` (posezoo/commands/test.py) for the checkpoints it takes and what the
results file holds. Errors print one line and exit 2 (``--debug``: the traceback).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's posezoo first


def main(argv: list[str] | None = None) -> dict:
    from posezoo.commands import test

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    test.add_arguments(parser)
    args = parser.parse_args(argv)
    return test.evaluate(args, ["python", "tools/test.py", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    from posezoo._runtime import reexec_with_tuned_allocator

    reexec_with_tuned_allocator()  # large activations without page faults: see posezoo/_runtime.py
    from posezoo.cli import run_script

    sys.exit(run_script("tools/test.py", main))
