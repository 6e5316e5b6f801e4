"""Model families (one module each: blocks, model, registrations, checkpoint converter) and heads.

Importing this package imports every module in it, so each part registers itself."""
from posezoo._discover import import_submodules

import_submodules(__name__)
