"""crm-rs for Python: the CRM's analytics engine on polars DataFrames.

``crm.analytics`` runs the standard reports on tables you hold; the errors it raises are
rooted at :class:`crm.CrmError`.
"""

from __future__ import annotations

from . import analytics, errors
from ._crm import __version__
from .errors import ConflictError, CrmError, NotFoundError, PermissionDeniedError, ValidationError

__all__ = [
    "__version__",
    "analytics",
    "errors",
    "CrmError",
    "ValidationError",
    "NotFoundError",
    "ConflictError",
    "PermissionDeniedError",
]
