"""``posezoo list [PATTERN]``: the named models as a table. Reads the entries only (no torch)."""
from __future__ import annotations

import argparse

NAME = "list"
HELP = "list the named models (fnmatch PATTERN, e.g. 'dstformer*')"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="*")
    parser.add_argument("--pretrained", action="store_true", help="only names with published weights")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON (for scripts)")


def rows(pattern: str, pretrained: bool) -> list[dict]:
    """One dict per listed name: name, params, layout, max_frames (None: any), weights (tags)."""
    from posezoo.entries import get_entry, list_models

    out = []
    for name in list_models(pattern, pretrained=pretrained):
        entry, weights = get_entry(name)
        if weights is None or pretrained:  # without --pretrained, tags show in their arch's row
            tags = [weights.tag] if weights else list(entry.weights)
            out.append({"name": name, "params": entry.params, "layout": entry.layout,
                        "max_frames": entry.max_frames, "weights": tags})
    return out


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from rich.console import Console
    from rich.table import Table

    found = rows(args.pattern, args.pretrained)
    if args.json:
        print(json.dumps(found, indent=1))
        return 0 if found else 1
    if not found:
        what = "named models with weights" if args.pretrained else "named models"
        print(f"posezoo list: no {what} match {args.pattern!r} (fnmatch patterns, e.g. 'dstformer*'; "
              "`posezoo list` shows them all)", file=sys.stderr)
        return 1
    table = Table(title=f"posezoo models matching {args.pattern!r}")
    width = max(len(r["name"]) for r in found)
    table.add_column("name", no_wrap=True, min_width=width)  # names are never cut: they are what you type
    for column in ("params", "layout", "max frames"):
        table.add_column(column, justify="left" if column == "layout" else "right")
    table.add_column("weights", overflow="fold")
    for r in found:
        table.add_row(r["name"], f"{r['params'] / 1e6:.2f} M", r["layout"], str(r["max_frames"] or "any"),
                      ", ".join(r["weights"]) or "-")
    Console().print(table)
    return 0
