"""mmengine integration: task models, hooks, optimiser wrappers and compatibility patches. Every module registers its parts."""
from posezoo._discover import import_submodules

import_submodules(__name__)
