"""Data: keypoint layouts, readers, datasets and transforms. Every module registers its parts."""
from posezoo._discover import import_submodules

import_submodules(__name__)
