"""The ``posezoo`` command line. Each sub-command is a module in :mod:`posezoo.commands` that
defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; they are found by
listing that package, so a new command needs no edit here. Commands import torch only when run.

A module with ``TUNED_ALLOCATOR = True`` (training, testing) runs, when started from the command
line, in a process re-executed with :func:`posezoo._runtime.reexec_with_tuned_allocator`; ``run``
finds the command line's arguments in ``args.argv``.

Errors, for ``posezoo`` and the scripts in ``tools/`` alike (:func:`run_guarded`): a problem with an
input, argument or output prints one line ``PROG: error: MESSAGE`` and exits 2; an unexpected
exception prints one line asking for a report and exits 1; ``--debug`` (or ``POSEZOO_DEBUG=1``)
shows the traceback instead. Warnings print as ``PROG: warning: MESSAGE``.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pickle
import pkgutil
import sys
import warnings
import zipfile
from collections.abc import Callable

import posezoo.commands

DEBUG_FLAG = "--debug"
# Exceptions that describe a bad input, argument or output (posezoo's own subclass these).
USER_ERRORS = (ValueError, KeyError, TypeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile)


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
    parser.add_argument(DEBUG_FLAG, action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in sorted(_commands().items()):
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        command.add_argument(DEBUG_FLAG, action="store_true", default=argparse.SUPPRESS,
                             help="show the traceback of an error")
        module.add_arguments(command)
        command.set_defaults(_run=module.run, _tuned_allocator=getattr(module, "TUNED_ALLOCATOR", False))
    return parser


def one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (a KeyError's without its quotes)."""
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    return " ".join(str(message).split()) or type(exc).__name__


def run_guarded(prog: str, func: Callable[[], object], debug: bool = False) -> int:
    """Call ``func`` with posezoo's error path: 0 on success (or ``func``'s int), 2 with one line for
    an input/argument/output problem, 1 with one line for anything else, 130 on Ctrl-C."""
    debug = debug or os.environ.get("POSEZOO_DEBUG") == "1"

    def show_warning(message, category, filename, lineno, file=None, line=None):
        print(f"{prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = show_warning
        try:
            code = func()
        except KeyboardInterrupt:
            if debug:
                raise
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except USER_ERRORS as exc:
            if debug:
                raise
            print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except Exception as exc:
            if debug:
                raise
            print(f"{prog}: internal error ({type(exc).__name__}: {one_line(exc)}); run again with {DEBUG_FLAG} "
                  "for the traceback and report it", file=sys.stderr)
            return 1
    return code if isinstance(code, int) else 0


def run_script(prog: str, main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> int:
    """Run a ``tools/`` script's ``main(argv)`` through :func:`run_guarded`; ``--debug`` is taken out
    of the arguments (``sys.argv`` when ``argv`` is None) before ``main`` parses them."""
    args = sys.argv[1:] if argv is None else argv
    debug = DEBUG_FLAG in args
    if debug:
        args = [a for a in args if a != DEBUG_FLAG]
        if argv is None:
            sys.argv[1:] = args
    return run_guarded(prog, lambda: main() if argv is None else main(args), debug)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if argv is None and args._tuned_allocator:
        from posezoo._runtime import reexec_with_tuned_allocator

        reexec_with_tuned_allocator()
    args.argv = sys.argv[1:] if argv is None else list(argv)
    return run_guarded(f"posezoo {args.command}", lambda: args._run(args), args.debug)


if __name__ == "__main__":
    sys.exit(main())
