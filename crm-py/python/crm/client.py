"""Connections to a CRM's store: its analytics tables and the standard reports on them."""

from __future__ import annotations

import datetime as _dt
import os
import pathlib
from typing import Mapping, Optional, Union

import polars as pl

from . import _crm
from . import analytics as _analytics
from .analytics import _date, _naive, _spec
from .errors import invalid


class Client:
    """A connection to a CRM's store (from :func:`crm.connect`).

    Reads as the whole store, or as one user (their read scope: a plain user's tables and
    reports hold only the records they may see). The snapshot of the store is cached and
    read again only after the store changes.
    """

    def __init__(self, inner: "_crm.Client"):
        self._inner = inner

    @property
    def user(self) -> Optional[str]:
        """The id of the user this connection reads as, or ``None`` for the whole store."""
        return self._inner.user

    def tables(self) -> dict[str, pl.DataFrame]:
        """The analytics tables (companies, contacts, deals, deal_stage_history,
        interactions, tasks) as this connection may read them: live rows, ids as UUID
        strings, timestamps in UTC."""
        return self._inner.tables()

    def report(
        self,
        name: str,
        *,
        as_of: Union[_dt.datetime, str, None] = None,
        forecast_end: Union[_dt.date, str, None] = None,
        engagement_start: Union[_dt.datetime, str, None] = None,
    ) -> pl.DataFrame:
        """Runs the standard report ``name`` on the store's snapshot (see
        :func:`crm.analytics.report` for the parameters)."""
        if not isinstance(name, str):
            raise invalid(
                f"the report name must be a string, not {type(name).__name__}",
                "name",
                "invalid_value",
                "expected a string",
            )
        return self._inner.report(
            name,
            as_of=_naive("as_of", as_of),
            forecast_end=_date("forecast_end", forecast_end),
            engagement_start=_naive("engagement_start", engagement_start),
        )

    def invoices(self, currency: Optional[str] = None) -> pl.DataFrame:
        """The invoices and credit notes this connection may read, one row each: number,
        type, status, customer and deal ids, currency, the amounts in minor units
        (``subtotal``, ``discount_total``, ``tax_total``, ``total``, ``amount_paid``,
        ``amount_credited``, ``balance``), ``issue_date``, ``due_date``, ``overdue``.
        With ``currency`` (ISO 4217), ``total_reporting`` and ``balance_reporting`` hold
        them converted at the exchange rate of each issue date (null where none is
        stored)."""
        if currency is not None and not isinstance(currency, str):
            raise invalid(
                f"the currency must be a string, not {type(currency).__name__}",
                "currency",
                "invalid_value",
                "expected an ISO 4217 code such as EUR",
            )
        return self._inner.invoices(currency)

    def payments(self) -> pl.DataFrame:
        """The payments and refunds this connection may read, one row each: invoice id,
        kind (``payment`` or ``refund``), amount in minor units, currency, method,
        gateway and its reference, ``received_at``."""
        return self._inner.payments()

    def records(
        self,
        kind: str,
        *,
        filter: Optional[str] = None,
        q: Optional[str] = None,
        sort: Optional[str] = None,
        include_deleted: bool = False,
    ) -> pl.DataFrame:
        """Every record of a list (``contacts``, ``companies``, ``deals``, ``tasks``,
        ``interactions``) this connection may export that ``filter`` (the API's grammar,
        ``lifecycleStage[eq]:lead``), ``q`` (free text) and ``sort`` (``name,-createdAt``:
        a leading ``-`` sorts descending) find, one row each, with the API's field names:
        lists as list columns, times in UTC, free-form objects as JSON text. Audited as an
        export."""
        for name, value in (("kind", kind), ("filter", filter), ("q", q), ("sort", sort)):
            if value is not None and not isinstance(value, str):
                raise invalid(
                    f"{name} must be a string, not {type(value).__name__}",
                    name,
                    "invalid_value",
                    "expected a string",
                )
        frame = self._inner.records(kind, filter, q, sort, bool(include_deleted))
        # The times are UTC instants, as in the Parquet export (the bridge from Rust
        # drops the zone).
        return frame.with_columns(pl.col(pl.Datetime).dt.replace_time_zone("UTC"))

    def custom(self, spec: Union[Mapping[str, object], str]) -> pl.DataFrame:
        """Runs a custom report on the store's snapshot (see :func:`crm.analytics.custom`
        for the spec)."""
        return self._inner.custom(_spec(spec))

    def export(
        self,
        frame: pl.DataFrame,
        path: Union[str, "os.PathLike[str]"],
        format: Optional[str] = None,
        *,
        title: Optional[str] = None,
        parameters: Optional[Mapping[str, object]] = None,
        chart: Optional[Mapping[str, object]] = None,
    ) -> pathlib.Path:
        """Writes a report to a file (see :func:`crm.analytics.export`)."""
        return _analytics.export(frame, path, format, title=title, parameters=parameters, chart=chart)

    def __repr__(self) -> str:
        return repr(self._inner)


def connect(url: str, user: Optional[str] = None) -> Client:
    """Connects to a CRM's store: ``sqlite://path/crm.db``, ``postgres://…`` or
    ``mongodb://…`` (the same URLs as ``crm-server --database-url``). With ``user`` (a
    user name or email) everything read is limited to that user's scope."""
    if not isinstance(url, str):
        raise invalid("url must be a string", "url", "invalid_value", "expected a database URL")
    return Client(_crm.connect(url, user))


def seed_demo(url: str, companies: int = 40, contacts: int = 200, deals: int = 150) -> dict[str, int]:
    """Fills the CRM at ``url`` with crm-server's demo data (as ``crm-server seed-demo``
    does) and returns how many records of each kind were made."""
    for name, value in (("companies", companies), ("contacts", contacts), ("deals", deals)):
        if not isinstance(value, int) or value < 0:
            raise invalid(f"{name} must be a non-negative integer", name, "invalid_value", "expected an integer >= 0")
    return _crm.seed_demo(url, companies, contacts, deals)


__all__ = ["Client", "connect", "seed_demo"]
