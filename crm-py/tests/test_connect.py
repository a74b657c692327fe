"""crm.connect: the store snapshot of a real (SQLite) CRM, seeded with crm-server's demo."""

from __future__ import annotations

import polars as pl
import pytest

import crm
import reference


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    url = f"sqlite://{tmp_path_factory.mktemp('crm') / 'demo.db'}"
    made = crm.seed_demo(url, companies=12, contacts=60, deals=45)
    assert made["deals"] == 45 and made["companies"] == 12
    return url


def test_tables_have_the_analytics_schema(demo_url):
    client = crm.connect(demo_url)
    tables = client.tables()
    assert set(tables) == set(crm.analytics.TABLES)
    assert tables["deals"].height == 45
    assert tables["companies"].height == 12
    deals = tables["deals"]
    for column in ["id", "company_id", "owner_id", "pipeline_stage", "amount_cents", "created_at", "closed_at"]:
        assert column in deals.columns
    assert deals.schema["id"] == pl.String
    assert deals.schema["created_at"] == pl.Datetime("us")
    assert deals.schema["expected_close_date"] == pl.Date
    assert tables["deal_stage_history"].height >= 45, "every deal has its creation in the history"
    assert "postgres" not in repr(client) and "sqlite" in repr(client)


@pytest.mark.parametrize("name", crm.analytics.REPORTS)
def test_reports_on_the_store_equal_duckdb(demo_url, name):
    client = crm.connect(demo_url)
    tables = client.tables()
    con = reference.connect(tables)
    got = client.report(name)
    assert reference.differences(got, reference.run(con, name, reference.params(con))) == []
    assert got.equals(crm.analytics.report(name, tables))


def test_a_user_sees_their_own_pipeline(demo_url):
    everything = crm.connect(demo_url).tables()
    seen = 0
    for rep in ["demo-enterprise-1", "demo-enterprise-2", "demo-mid-market-1", "demo-mid-market-2"]:
        client = crm.connect(demo_url, user=rep)
        assert client.user is not None
        mine = client.tables()
        assert mine["deals"].height <= everything["deals"].height
        assert set(mine["deals"]["owner_id"].to_list()) <= {client.user}
        assert set(mine["contacts"]["owner_id"].to_list()) <= {client.user}
        assert set(mine["deal_stage_history"]["deal_id"].to_list()) <= set(mine["deals"]["id"].to_list())
        r1 = client.report("r1_pipeline_by_stage")
        assert (
            r1["deal_count"].sum()
            == mine["deals"]
            .filter(pl.col("pipeline_stage").is_in(["prospecting", "qualification", "proposal", "negotiation"]))
            .height
        )
        seen += mine["deals"].height
    assert seen > 0, "the reps own some of the deals"
    # A rep of the other team owns none of them, and sees none.
    assert crm.connect(demo_url, user="demo-mid-market-1").tables()["deals"].height < everything["deals"].height


def test_unknown_user_and_bad_url(demo_url, tmp_path):
    with pytest.raises(crm.ValidationError, match="no user"):
        crm.connect(demo_url, user="nobody")
    with pytest.raises(crm.CrmError):
        crm.connect("postgres://127.0.0.1:1/nothing")
    with pytest.raises(crm.ValidationError):
        crm.connect("sqlite::memory:")


def test_seeding_twice_is_a_conflict_and_changes_nothing(demo_url):
    before = crm.connect(demo_url).tables()["companies"].height
    with pytest.raises(crm.ConflictError):
        crm.seed_demo(demo_url, companies=2, contacts=0, deals=0)
    assert crm.connect(demo_url).tables()["companies"].height == before
    with pytest.raises(crm.ValidationError):
        crm.seed_demo(demo_url, companies=-1)


def test_custom_reports_and_exports_on_the_store(demo_url, tmp_path):
    spec = {
        "source": "deals",
        "join": ["companies"],
        "groupBy": ["owner_id", "companies.industry"],
        "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "amount_cents", "as": "amount"}],
        "sort": "amount[desc]",
    }
    client = crm.connect(demo_url)
    got = client.custom(spec)
    assert got.equals(crm.analytics.custom(spec, client.tables()))
    assert got["deals"].sum() == 45
    # A rep's custom report covers only what the rep may read.
    rep = crm.connect(demo_url, user="demo-enterprise-1")
    mine = rep.custom(spec)
    assert set(mine["owner_id"].to_list()) <= {rep.user}
    assert mine["deals"].sum() == rep.tables()["deals"].height
    with pytest.raises(crm.ValidationError) as e:
        client.custom({"source": "deals", "groupBy": ["stage"], "aggregates": [{"fn": "count"}]})
    assert e.value.fields[0]["field"] == "groupBy.0.field"
    path = client.export(got, tmp_path / "by_owner.xlsx", title="Deals by owner")
    assert path.stat().st_size > 0


def test_invoices_and_payments_are_frames(demo_url):
    client = crm.connect(demo_url)
    invoices = client.invoices(currency="EUR")
    for column in ["id", "number", "status", "currency", "total", "balance", "issue_date", "total_reporting"]:
        assert column in invoices.columns
    assert invoices.schema["total"] == pl.Int64
    assert invoices.schema["issue_date"] == pl.Date
    payments = client.payments()
    assert payments.schema["received_at"] == pl.Datetime("us")
    assert payments.schema["amount"] == pl.Int64
    with pytest.raises(crm.ValidationError) as e:
        client.invoices(currency="EURO")
    assert e.value.fields[0]["field"] == "currency"


def test_records_are_frames_of_a_list_query(demo_url):
    client = crm.connect(demo_url)
    contacts = client.records("contacts")
    assert contacts.height == client.tables()["contacts"].height
    for column in ["id", "name", "email", "lifecycleStage", "tags", "createdAt", "version"]:
        assert column in contacts.columns
    assert contacts.schema["tags"] == pl.List(pl.String)
    assert contacts.schema["createdAt"] == pl.Datetime("ms", "UTC")
    leads = client.records("contacts", filter="lifecycleStage[eq]:lead", sort="name")
    assert 0 < leads.height < contacts.height
    assert set(leads["lifecycleStage"].to_list()) == {"lead"}
    assert leads["name"].to_list() == sorted(leads["name"].to_list(), key=lambda s: s.encode())
    # Each rep exports what they may see (their tables' deals), and not everyone sees all.
    seen = []
    for user in [f"demo-{seg}-{i}" for seg in ("enterprise", "mid-market") for i in range(3)]:
        rep = crm.connect(demo_url, user=user)
        mine = rep.records("deals")
        assert mine.height == rep.tables()["deals"].height, user
        seen.append(mine.height)
    assert min(seen) < client.records("deals").height
    with pytest.raises(crm.ValidationError) as e:
        client.records("teams")
    assert e.value.fields[0]["field"] == "kind"
    with pytest.raises(crm.ValidationError) as e:
        client.records("contacts", filter="nope[eq]:1")
    assert e.value.fields[0]["field"] == "filter"
