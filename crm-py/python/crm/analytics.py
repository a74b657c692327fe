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
import json
import os
import pathlib
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


def _spec(spec: Union[Mapping[str, object], str]) -> str:
    """A report spec as the JSON the engine reads."""
    if isinstance(spec, str):
        return spec
    if not isinstance(spec, Mapping):
        raise invalid(
            f"a report spec is a dict (or its JSON), not {type(spec).__name__}", "spec", "invalid_value", "expected a dict"
        )
    try:
        return json.dumps(spec)
    except (TypeError, ValueError) as e:
        raise invalid(f"the report spec is not plain JSON data: {e}", "spec", "invalid_value", str(e)) from None


def custom(spec: Union[Mapping[str, object], str], tables: Tables) -> pl.DataFrame:
    """Runs a custom report on ``tables``.

    ``spec`` (a dict, or its JSON) names a ``source`` table, optionally ``join``\ s the
    tables it refers to (deals → companies, contacts; contacts → companies; interactions
    → contacts; deal_stage_history → deals; their fields are ``table.field``), a
    ``filter`` in the list queries' grammar, ``groupBy`` fields (a name, or
    ``{"field", "bucket": day|week|month|quarter|year, "as"}``) and ``aggregates``
    (``{"fn": count|count_distinct|sum|avg|min|max|median, "field", "as"}``) — or
    ``fields`` to list rows — and ``sort`` (``"revenue[desc],industry"``) and ``limit``::

        crm.analytics.custom({
            "source": "deals", "join": ["companies"],
            "filter": "pipeline_stage[eq]:closed_won",
            "groupBy": ["companies.industry"],
            "aggregates": [{"fn": "sum", "field": "amount_cents", "as": "revenue"}],
            "sort": "revenue[desc]", "limit": 10,
        }, tables)

    Deleted records are left out, as in the standard reports. A bad spec raises
    :class:`crm.ValidationError` naming every offending field (``groupBy.1.bucket``, …).
    """
    return _crm.custom(_spec(spec), _tables(tables))


#: The export formats.
FORMATS: tuple[str, ...] = ("csv", "parquet", "json", "xlsx", "pdf")


def export(
    frame: pl.DataFrame,
    path: Union[str, "os.PathLike[str]"],
    format: Optional[str] = None,
    *,
    title: Optional[str] = None,
    parameters: Optional[Mapping[str, object]] = None,
    chart: Optional[Mapping[str, object]] = None,
) -> pathlib.Path:
    """Writes a report (any DataFrame) to ``path`` as ``csv`` (REPORTS.md's canonical CSV:
    floats with six decimals, timestamps ``YYYY-MM-DD HH:MM:SS``, NULL empty), ``parquet``,
    ``json`` (an array of row objects), ``xlsx`` (a typed "Report" sheet and an "About"
    sheet with ``title`` and ``parameters``) or ``pdf`` (title, parameters, a chart and the
    table). ``chart`` is the PDF's chart, ``{"type": "bar"|"line"|"funnel", "x": column,
    "y": [columns]}``; without it a bar chart of the first label and numeric columns.
    ``format`` defaults to the file's extension. Returns the path written."""
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    if not isinstance(frame, pl.DataFrame):
        raise invalid(
            f"frame must be a polars DataFrame, not {type(frame).__name__}", "frame", "invalid_value", "expected a DataFrame"
        )
    if format is not None and not isinstance(format, str):
        raise invalid("format must be a string", "format", "invalid_value", f"one of {', '.join(FORMATS)}")
    params = [(str(k), v.isoformat() if hasattr(v, "isoformat") else str(v)) for k, v in (parameters or {}).items()]
    target = pathlib.Path(os.fspath(path))
    if chart is not None and not isinstance(chart, Mapping):
        raise invalid("chart must be a dict", "chart", "invalid_value", 'like {"type": "bar", "x": "stage", "y": ["total"]}')
    chart_json = json.dumps(dict(chart), default=str) if chart is not None else None
    _crm.export(frame, str(target), format, title, params, chart_json)
    return target


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


__all__ = ["FORMATS", "REPORTS", "TABLES", "custom", "export", "report", "resolve_params", "read_parquet"]
