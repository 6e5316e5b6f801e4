"""Evaluation: per-frame pose errors and the mmengine metrics. Every module registers its parts."""
from posezoo._discover import import_submodules

import_submodules(__name__)
