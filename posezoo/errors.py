"""posezoo's exception and warning types, for inputs it cannot use and outputs it cannot write.

Each error subclasses the built-in an existing ``except`` expects (``ValueError``,
``FileNotFoundError``, ``OSError``), and :class:`PosezooError`, so ``except PosezooError`` catches
every problem posezoo diagnosed. Messages name the input and the problem on one line; the command
line prints them as ``posezoo CMD: error: MESSAGE`` and exits 2 (see :mod:`posezoo.cli`).
"""
from __future__ import annotations


class PosezooError(Exception):
    """Base of the problems posezoo diagnosed in a user's input, configuration or output."""


class InputError(PosezooError, ValueError):
    """An input (file, array, argument or configuration value) posezoo cannot use."""


class InputNotFoundError(PosezooError, FileNotFoundError):
    """A named input file or folder that does not exist."""


class OutputError(PosezooError, OSError):
    """An output that cannot be written: wrong suffix, a parent that is a file, no permission."""


class PosezooWarning(UserWarning):
    """An input posezoo used but doubts: results may be meaningless (degenerate keypoints, ...)."""
