"""sellerbench: a notebook workbench for sellers collected by a seller-collection service.

    import sellerbench as sb
    wb = sb.demo()          # or sb.connect()
    wb.sync(); wb.sellers(flagged=True)

Every error sellerbench raises on purpose is importable from here (the tree is drawn in
``sellerbench.errors``). Importing the package loads the notebook client only: the
reference server, the report stack and JupyterLab load when they are used.
"""

from .errors import (
    ApiError,
    ApiValidationError,
    AuthError,
    CacheCorruptError,
    CacheError,
    CacheLockedError,
    CacheVersionError,
    ConfigError,
    ConflictError,
    ExportError,
    MutationError,
    NotFoundError,
    ProtocolError,
    RateLimitedError,
    SellerbenchError,
    ServerError,
    SyncError,
    TransportError,
    UserError,
)
from .workbench import Workbench, connect, demo

__all__ = [
    "ApiError",
    "ApiValidationError",
    "AuthError",
    "CacheCorruptError",
    "CacheError",
    "CacheLockedError",
    "CacheVersionError",
    "ConfigError",
    "ConflictError",
    "ExportError",
    "MutationError",
    "NotFoundError",
    "ProtocolError",
    "RateLimitedError",
    "SellerbenchError",
    "ServerError",
    "SyncError",
    "TransportError",
    "UserError",
    "Workbench",
    "__version__",
    "connect",
    "demo",
]
__version__ = "0.1.0"
