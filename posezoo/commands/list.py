"""``posezoo list [PATTERN]``: the named models as a table. Reads the entries only (no torch)."""
from __future__ import annotations

import argparse

NAME = "list"
HELP = "list the named models (fnmatch PATTERN, e.g. 'dstformer*')"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*")
    parser.add_argument("--pretrained", action="store_true", help="only names with published weights")


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from posezoo.entries import get_entry, list_models

    names = list_models(args.pattern, pretrained=args.pretrained)
    table = Table(title=f"posezoo models matching {args.pattern!r}")
    for column in ("name", "params", "layout", "max frames", "tags"):
        table.add_column(column, justify="right" if column in ("params", "max frames") else "left")
    for name in names:
        entry, weights = get_entry(name)
        if weights is None or args.pretrained:  # without --pretrained, tags show in their arch's row
            tags = weights.tag if weights else (", ".join(entry.weights) or "-")
            table.add_row(name, f"{entry.params / 1e6:.2f} M", entry.layout, str(entry.max_frames or "any"), tags)
    Console().print(table)
    return 0 if names else 1
