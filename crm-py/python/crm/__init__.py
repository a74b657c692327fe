"""crm-rs for Python: the CRM's analytics engine on polars DataFrames.

``crm.analytics`` runs the standard reports on tables you hold; ``crm.connect(url)`` reads
them out of a CRM's store. The errors raised are rooted at :class:`crm.CrmError`.
"""

from __future__ import annotations

from . import analytics, errors
from ._crm import __version__
from .client import Client, connect, seed_demo
from .errors import ConflictError, CrmError, NotFoundError, PermissionDeniedError, ValidationError

__all__ = [
    "__version__",
    "analytics",
    "errors",
    "Client",
    "connect",
    "seed_demo",
    "CrmError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "PermissionDeniedError",
]
