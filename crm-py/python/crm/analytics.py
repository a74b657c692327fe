"""The analytics engine of crm-rs on polars DataFrames.

The eight standard reports of ``REPORTS.md`` run on the six analytics tables (companies,
contacts, deals, deal_stage_history, interactions, tasks) given as a dict of polars
DataFrames; id columns may be integers or strings, extra columns are ignored.

>>> import crm
>>> tables = crm.analytics.read_parquet("data/")
>>> crm.analytics.report("r1_pipeline_by_stage", tables)
"""

from __future__ import annotations

import datetime as _dt
import os
from typing import Mapping, Optional, Union

import polars as pl

from . import _crm
from .errors import invalid

#: The standard reports, in order.
REPORTS: tuple[str, ...] = tuple(_crm.standard_reports())
#: The analytics tables' names.
TABLES: tuple[str, ...] = tuple(_crm.table_names())

Tables = Mapping[str, pl.DataFrame]


def _tables(tables: Tables) -> dict[str, pl.DataFrame]:
    if not isinstance(tables, Mapping):
        raise invalid(
            f"tables must be a dict of polars DataFrames by table name, not {type(tables).__name__}",
            "tables",
            "invalid_value",
            "expected a dict",
        )
    out: dict[str, pl.DataFrame] = {}
    for name, frame in tables.items():
        if isinstance(frame, pl.LazyFrame):
            frame = frame.collect()
        if not isinstance(frame, pl.DataFrame):
            raise invalid(
                f"tables[{name!r}] must be a polars DataFrame, not {type(frame).__name__}",
                f"tables.{name}",
                "invalid_value",
                "expected a DataFrame",
            )
        out[str(name)] = frame
    return out


def _naive(name: str, value: Union[_dt.datetime, _dt.date, str, None]) -> Optional[_dt.datetime]:
    """A timestamp parameter as a naive datetime: aware ones are taken to UTC, a date is
    its midnight, a string is ISO 8601."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = _dt.datetime.fromisoformat(value)
        except ValueError:
            raise invalid(
                f"{name} must be a datetime, not {value!r}", name, "invalid_format", "expected an ISO 8601 timestamp"
            ) from None
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value
    if isinstance(value, _dt.date):
        return _dt.datetime(value.year, value.month, value.day)
    raise invalid(
        f"{name} must be a datetime, not {type(value).__name__}", name, "invalid_value", "expected a datetime"
    )


def _date(name: str, value: Union[_dt.date, str, None]) -> Optional[_dt.date]:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return _dt.date.fromisoformat(value)
        except ValueError:
            raise invalid(
                f"{name} must be a date, not {value!r}", name, "invalid_format", "expected YYYY-MM-DD"
            ) from None
    if isinstance(value, _dt.datetime):
        raise invalid(f"{name} must be a date, not a datetime", name, "invalid_value", "expected a date")
    if isinstance(value, _dt.date):
        return value
    raise invalid(f"{name} must be a date, not {type(value).__name__}", name, "invalid_value", "expected a date")


def report(
    name: str,
    tables: Tables,
    *,
    as_of: Union[_dt.datetime, str, None] = None,
    forecast_end: Union[_dt.date, str, None] = None,
    engagement_start: Union[_dt.datetime, str, None] = None,
) -> pl.DataFrame:
    """Runs the standard report ``name`` (one of :data:`REPORTS`) on ``tables``.

    Parameters default as REPORTS.md says: ``as_of`` to the latest ``created_at`` of a
    live deal, ``forecast_end`` to ``as_of``'s date + 12 months, ``engagement_start`` to
    ``as_of`` − 90 days. Raises :class:`crm.ValidationError` for an unknown report, a
    missing table or column, or a bad parameter.
    """
    if not isinstance(name, str):
        raise invalid(
            f"the report name must be a string, not {type(name).__name__}", "name", "invalid_value", "expected a string"
        )
    return _crm.report(
        name,
        _tables(tables),
        as_of=_naive("as_of", as_of),
        forecast_end=_date("forecast_end", forecast_end),
        engagement_start=_naive("engagement_start", engagement_start),
    )


def resolve_params(
    tables: Tables,
    *,
    as_of: Union[_dt.datetime, str, None] = None,
    forecast_end: Union[_dt.date, str, None] = None,
    engagement_start: Union[_dt.datetime, str, None] = None,
) -> dict[str, object]:
    """The report parameters with their defaults filled in from ``tables``."""
    a, f, e = _crm.resolve_params(
        _tables(tables),
        as_of=_naive("as_of", as_of),
        forecast_end=_date("forecast_end", forecast_end),
        engagement_start=_naive("engagement_start", engagement_start),
    )
    return {"as_of": a, "forecast_end": f, "engagement_start": e}


def read_parquet(directory: Union[str, "os.PathLike[str]"]) -> dict[str, pl.DataFrame]:
    """Reads the analytics tables (``<table>.parquet``) found in ``directory``."""
    return _crm.read_parquet(os.fspath(directory))


__all__ = ["REPORTS", "TABLES", "report", "resolve_params", "read_parquet"]
