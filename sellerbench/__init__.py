"""sellerbench: a notebook workbench for sellers collected by a seller-collection service.

    import sellerbench as sb
    wb = sb.demo()          # or sb.connect()
    wb.sync(); wb.sellers(flagged=True)

Every error sellerbench raises on purpose is importable from here (the tree is drawn in
``sellerbench.errors``). Importing the package loads the notebook client only: the
reference server, the report stack and JupyterLab load when they are used.
"""

from . import errors
from .errors import *  # noqa: F403  (the exception tree: errors.__all__)
from .workbench import Workbench, connect, demo

# The version is written here once; pyproject.toml reads it (dynamic = ["version"]).
__version__ = "0.1.0"
__all__ = [*errors.__all__, "Workbench", "__version__", "connect", "demo"]
