"""``posezoo info NAME``: an entry's config, skeleton contract, parameters, license and weights."""
from __future__ import annotations

import argparse
import json

NAME = "info"
HELP = "show a model's entry: config, joint layout, normalisation, units, params, license, weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true", help="print plain JSON")


def run(args: argparse.Namespace) -> int:
    from posezoo.entries import model_info

    from posezoo.precision import lift_dtype_note

    info = model_info(args.name)
    info["lift_dtype"] = lift_dtype_note(list(info.get("weights") or {}))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.console import Console
    from rich.pretty import Pretty
    from rich.table import Table

    table = Table(title=args.name, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in info.items():
        table.add_row(key, Pretty(value) if isinstance(value, (dict, list)) else str(value))
    Console().print(table)
    return 0
