"""Type stubs of the compiled module ``crm._crm`` (use :mod:`crm.analytics` instead)."""

import datetime

import polars as pl

__version__: str

def report(
    name: str,
    tables: dict[str, pl.DataFrame],
    as_of: datetime.datetime | None = None,
    forecast_end: datetime.date | None = None,
    engagement_start: datetime.datetime | None = None,
) -> pl.DataFrame: ...
def custom(spec: str, tables: dict[str, pl.DataFrame]) -> pl.DataFrame: ...
def export(
    frame: pl.DataFrame,
    path: str,
    format: str | None = None,
    title: str | None = None,
    parameters: list[tuple[str, str]] | None = None,
    chart: str | None = None,
) -> str: ...
def resolve_params(
    tables: dict[str, pl.DataFrame],
    as_of: datetime.datetime | None = None,
    forecast_end: datetime.date | None = None,
    engagement_start: datetime.datetime | None = None,
) -> tuple[datetime.datetime, datetime.date, datetime.datetime]: ...
def read_parquet(directory: str) -> dict[str, pl.DataFrame]: ...
def standard_reports() -> list[str]: ...
def table_names() -> list[str]: ...

class Client:
    @property
    def user(self) -> str | None: ...
    def tables(self) -> dict[str, pl.DataFrame]: ...
    def report(
        self,
        name: str,
        as_of: datetime.datetime | None = None,
        forecast_end: datetime.date | None = None,
        engagement_start: datetime.datetime | None = None,
    ) -> pl.DataFrame: ...
    def custom(self, spec: str) -> pl.DataFrame: ...
    def invoices(self, currency: str | None = None) -> pl.DataFrame: ...
    def payments(self) -> pl.DataFrame: ...
    def records(
        self,
        kind: str,
        filter: str | None = None,
        q: str | None = None,
        sort: str | None = None,
        include_deleted: bool = False,
    ) -> pl.DataFrame: ...

def connect(url: str, user: str | None = None) -> Client: ...
def seed_demo(url: str, companies: int = 40, contacts: int = 200, deals: int = 150) -> dict[str, int]: ...
