"""Sub-commands of the ``posezoo`` command line, one module each (see :mod:`posezoo.cli`)."""
