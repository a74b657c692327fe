"""crm.analytics.export: canonical CSV for every report, Parquet and JSON round trips, a
typed XLSX, and the errors."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import polars as pl
import pytest

import crm


def canonical_csv(df: pl.DataFrame) -> str:
    """REPORTS.md's canonical CSV, written independently of the engine."""

    def cell(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.6f}"
        if isinstance(v, dt.datetime):
            return v.strftime("%Y-%m-%d %H:%M:%S")
        if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
            return "'" + v  # never a live formula in a spreadsheet
        return str(v)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(df.columns)
    for row in df.iter_rows():
        w.writerow([cell(v) for v in row])
    return buf.getvalue()


@pytest.mark.parametrize("name", crm.analytics.REPORTS)
def test_csv_is_canonical_for_every_report(name, tables, tmp_path):
    df = crm.analytics.report(name, tables)
    path = crm.analytics.export(df, tmp_path / f"{name}.csv")
    assert path.read_text() == canonical_csv(df)


def test_csv_defuses_formulas_but_not_numbers(tmp_path):
    df = pl.DataFrame({"name": ["=HYPERLINK(\"x\")", "@a", "plain", None], "amount": [-5, 1, 2, 3]})
    path = crm.analytics.export(df, tmp_path / "names.csv")
    assert path.read_text() == canonical_csv(df)
    assert path.read_text().splitlines()[1] == "\"'=HYPERLINK(\"\"x\"\")\",-5"


def test_parquet_and_json_round_trip(tables, tmp_path):
    df = crm.analytics.report("r7_contact_engagement", tables)
    assert pl.read_parquet(crm.analytics.export(df, tmp_path / "r7.parquet")).equals(df)
    rows = json.loads(crm.analytics.export(df, tmp_path / "r7.json").read_text())
    assert len(rows) == df.height
    assert list(rows[0]) == df.columns
    first = df.row(0, named=True)
    assert rows[0]["contact_id"] == first["contact_id"]
    assert rows[0]["last_interaction_at"] == first["last_interaction_at"].isoformat()
    r4 = crm.analytics.report("r4_stage_funnel", tables)
    rows = json.loads(crm.analytics.export(r4, tmp_path / "r4.json").read_text())
    assert rows[-1]["converted_to_next"] is None
    assert rows[0]["conversion_to_next"] == pytest.approx(r4["conversion_to_next"][0])


def test_xlsx_has_a_typed_report_sheet_and_an_about_sheet(tables, tmp_path):
    df = crm.analytics.report("r3_win_rate_by_owner", tables)
    path = crm.analytics.export(
        df, tmp_path / "r3", "XLSX", title="Win rate by owner", parameters={"as_of": dt.datetime(2026, 1, 7)}
    )
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        workbook = z.read("xl/workbook.xml").decode()
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
        strings = z.read("xl/sharedStrings.xml").decode()
    assert "xl/worksheets/sheet2.xml" in names
    assert 'name="Report"' in workbook and 'name="About"' in workbook
    # Numbers are numbers (no shared-string type), the header and title are text.
    assert '<c r="B2"' in sheet and 't="s"' in sheet
    assert "Win rate by owner" in strings and "2026-01-07T00:00:00" in strings
    for column in df.columns:
        assert column in strings


def test_client_export_and_errors(tables, tmp_path):
    df = crm.analytics.report("r1_pipeline_by_stage", tables)
    with pytest.raises(crm.ValidationError, match="not an export format") as e:
        crm.analytics.export(df, tmp_path / "r1.docx")
    assert e.value.fields[0]["field"] == "format"
    with pytest.raises(crm.ValidationError, match="no extension"):
        crm.analytics.export(df, tmp_path / "r1")
    with pytest.raises(crm.ValidationError) as e:
        crm.analytics.export(df, tmp_path / "missing" / "r1.csv")
    assert e.value.fields[0]["field"] == "path"
    with pytest.raises(crm.ValidationError, match="DataFrame"):
        crm.analytics.export({"stage": []}, tmp_path / "r1.csv")
    assert crm.analytics.export(df.lazy(), tmp_path / "lazy.csv").read_text() == canonical_csv(df)
