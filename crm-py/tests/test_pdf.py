"""crm.analytics.export to PDF: title, parameters, chart and table, read back with pypdf
(an independent reader); long reports page, and the text is real Unicode text."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pypdf
import pytest

import crm


def text_of(path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(str(path)).pages]


def images_of(page) -> list[tuple[int, int]]:
    """The (width, height) of each image the page draws."""
    xobjects = page["/Resources"].get("/XObject", {})
    out = []
    for ref in xobjects.values():
        obj = ref.get_object()
        if obj["/Subtype"] == "/Image":
            out.append((int(obj["/Width"]), int(obj["/Height"])))
    return out


def test_pdf_has_title_parameters_chart_and_table(tables, tmp_path):
    df = crm.analytics.report("r1_pipeline_by_stage", tables)
    path = crm.analytics.export(
        df,
        tmp_path / "r1.pdf",
        title="Open pipeline — Q3 Ünïcode Ωμέγα Привет",
        parameters={"as_of": dt.datetime(2026, 1, 7)},
        chart={"type": "bar", "x": "stage", "y": ["total_amount", "weighted_amount"]},
    )
    assert path.read_bytes().startswith(b"%PDF-")
    reader = pypdf.PdfReader(str(path))
    first = reader.pages[0]
    text = first.extract_text()
    assert "Open pipeline — Q3 Ünïcode Ωμέγα Привет" in text
    assert "as_of: 2026-01-07T00:00:00" in text
    for column in df.columns:
        assert column in text
    for stage in df["stage"]:
        assert stage in text
    # The first row's total, as printed.
    assert str(df["total_amount"][0]) in text
    # The chart is an image on the first page.
    assert images_of(first) == [(1600, 760)]


def test_long_reports_page_and_say_what_is_left_out(tmp_path):
    n = 5_200
    df = pl.DataFrame({"name": [f"row {i:05d}" for i in range(n)], "value": list(range(n))})
    path = crm.analytics.export(df, tmp_path / "long.pdf", title="Long")
    pages = text_of(path)
    assert len(pages) > 50
    assert "row 00000" in pages[0] and "page 1 of" in pages[0]
    assert "row 04999" in "".join(pages)
    assert "row 05000" not in "".join(pages)
    assert "The first 5000 of 5200 rows are shown" in pages[-1]
    # The header repeats on every page.
    assert all("name" in p and "value" in p for p in pages)


def test_pdf_without_numbers_has_no_chart_and_bad_charts_are_refused(tmp_path):
    words = pl.DataFrame({"word": ["a", "b"]})
    path = crm.analytics.export(words, tmp_path / "words.pdf")
    reader = pypdf.PdfReader(str(path))
    assert images_of(reader.pages[0]) == []
    assert "word" in reader.pages[0].extract_text()
    df = pl.DataFrame({"stage": ["a", "b"], "n": [3, 1]})
    with pytest.raises(crm.ValidationError) as e:
        crm.analytics.export(df, tmp_path / "bad.pdf", chart={"type": "bar", "x": "nope", "y": ["stage"]})
    assert {f["field"] for f in e.value.fields} == {"chart.x", "chart.y.0"}
    with pytest.raises(crm.ValidationError):
        crm.analytics.export(df, tmp_path / "bad.pdf", chart={"type": "pie", "x": "stage", "y": ["n"]})
    assert not (tmp_path / "bad.pdf").exists()
    # A funnel draws.
    crm.analytics.export(df, tmp_path / "funnel.pdf", chart={"type": "funnel", "x": "stage", "y": ["n"]})
    assert len(images_of(pypdf.PdfReader(str(tmp_path / "funnel.pdf")).pages[0])) == 1
