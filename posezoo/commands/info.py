"""``posezoo info NAME``: an entry's config, skeleton contract, parameters, licence and weights."""
from __future__ import annotations

import argparse
import json

NAME = "info"
HELP = "show a model's entry: config, joint layout, normalisation, units, params, licence, weights"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name")
    parser.add_argument("--json", action="store_true", help="print plain JSON")


def run(args: argparse.Namespace) -> int:
    from posezoo.entries import model_info

    info = model_info(args.name)
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
