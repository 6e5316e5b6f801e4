"""The ``posezoo`` command line. Each sub-command is a module in :mod:`posezoo.commands` that
defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are found by
listing that package, so a new command needs no edit here. Commands import torch only when run."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import posezoo.commands


def _commands() -> dict:
    found = {}
    for info in pkgutil.iter_modules(posezoo.commands.__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"posezoo.commands.{info.name}")
            found[module.NAME] = module
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posezoo", description="Skeleton-based human motion model zoo")
    parser.add_argument("--version", action="version", version=f"posezoo {posezoo.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in sorted(_commands().items()):
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args._run(args)
    except (ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"posezoo {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
