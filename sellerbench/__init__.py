"""sellerbench: a notebook workbench for sellers collected by a seller-collection service.

    import sellerbench as sb
    wb = sb.demo()          # or sb.connect()
    wb.sync(); wb.sellers(flagged=True)
"""

from .errors import (
    ApiError,
    AuthError,
    CacheError,
    CacheLockedError,
    MutationError,
    SellerbenchError,
)
from .workbench import Workbench, connect, demo

__all__ = [
    "ApiError",
    "AuthError",
    "CacheError",
    "CacheLockedError",
    "MutationError",
    "SellerbenchError",
    "Workbench",
    "__version__",
    "connect",
    "demo",
]
__version__ = "0.1.0"
