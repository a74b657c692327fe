// The dashboard: the eight standard reports as cards (charts and tables) with one
// "as of" date for every card; a card's data is fetched again only when its inputs
// change. People see names, stages in their language and money in major units.
import { useEffect, useMemo, useState, type ReactNode } from "react";
import { api, type Contact, type User } from "../api";
import { Chart, type Series } from "../Chart";
import { useI18n, type Key } from "../i18n";
import { FormError } from "../ui";

interface Report {
  columns: { name: string; type: string }[];
  rowCount: number;
  data: Record<string, string | number | null>[];
}

type Cell = string | number | null | undefined;
const num = (v: Cell) => (typeof v === "number" ? v : Number(v ?? 0));

// The server runs two reports at a time per user (more answer 429): the cards queue.
const MAX_RUNNING = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function queued<T>(work: () => Promise<T>): Promise<T> {
  if (running >= MAX_RUNNING) await new Promise<void>((go) => waiting.push(go));
  running += 1;
  try {
    return await work();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

/** Runs a standard report when its name or `asOf` changes. */
function useReport(name: string, asOf: string) {
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    const q = asOf ? `?asOf=${encodeURIComponent(asOf)}` : "";
    setReport(null);
    queued(() => api<Report>("GET", `/api/reports/standard/${name}${q}`)).then(
      (r) => live && setReport(r),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [name, asOf]);
  return { report, error };
}

function Card({ name, asOf, children }: { name: string; asOf: string; children: (r: Report) => ReactNode }) {
  const { t } = useI18n();
  const { report, error } = useReport(name, asOf);
  const title = t(`report.${name}` as Key);
  return (
    <article className="dash-card" aria-labelledby={`card-${name}`} data-report={name}>
      <h2 id={`card-${name}`}>{title}</h2>
      <FormError error={error} />
      {!report && !error && <p role="status">{t("loading")}</p>}
      {report && report.rowCount === 0 && <p>{t("noData")}</p>}
      {report && report.rowCount > 0 && children(report)}
    </article>
  );
}

export function Dashboard() {
  const { t, lang } = useI18n();
  const [asOf, setAsOf] = useState("");
  const [owners, setOwners] = useState<Map<string, string>>(new Map());
  const [contacts, setContacts] = useState<Map<string, string>>(new Map());
  const rtl = lang === "ar";
  useEffect(() => {
    // Names for the owners' ids (a user who may not list users sees ids shortened).
    api<{ data: User[] }>("GET", "/api/users?limit=200").then(
      (p) => setOwners(new Map(p.data.map((u) => [u.id, u.username]))),
      () => {},
    );
  }, []);
  const fmt = useMemo(() => {
    const whole = new Intl.NumberFormat(lang, { maximumFractionDigits: 0 });
    const compact = new Intl.NumberFormat(lang, { notation: "compact", maximumFractionDigits: 1 });
    const pct = new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 });
    return {
      // Amounts are minor units: shown in major units.
      money: (v: number) => compact.format(v / 100),
      moneyWhole: (v: number) => whole.format(v / 100),
      count: (v: number) => whole.format(v),
      percent: (v: number) => pct.format(v),
    };
  }, [lang]);
  const stage = (s: Cell) => t(`stage.${String(s)}` as Key);
  const owner = (id: Cell) => owners.get(String(id)) ?? String(id).slice(0, 8);
  const col = (c: string) => t(`col.${c}` as Key);
  const describe = (cats: string[], s: Series[], f: (v: number) => string) =>
    cats.map((c, i) => `${c}: ${s.map((x) => f(x.values[i] ?? 0)).join(" / ")}`).join("; ");

  function chart(kind: "bar" | "line" | "funnel", r: Report, cat: (row: Report["data"][number]) => string, cols: string[], f: (v: number) => string, title: string) {
    const categories = r.data.map(cat);
    const series = cols.map((c) => ({ name: col(c), values: r.data.map((row) => num(row[c])) }));
    return <Chart kind={kind} categories={categories} series={series} format={f} rtl={rtl} label={`${title}. ${describe(categories, series, f)}`} />;
  }

  return (
    <section aria-labelledby="dash-title">
      <h1 id="dash-title">{t("dashboard")}</h1>
      <div className="toolbar">
        <label htmlFor="as-of">{t("asOf")}</label>
        <input id="as-of" type="date" value={asOf} onChange={(e) => setAsOf(e.target.value)} />
      </div>
      <div className="dash">
        <Card name="r1_pipeline_by_stage" asOf={asOf}>
          {(r) => chart("bar", r, (row) => stage(row.stage), ["total_amount", "weighted_amount"], fmt.money, t("report.r1_pipeline_by_stage"))}
        </Card>
        <Card name="r2_forecast_by_month" asOf={asOf}>
          {(r) => chart("line", r, (row) => String(row.month), ["total_amount", "weighted_amount"], fmt.money, t("report.r2_forecast_by_month"))}
        </Card>
        <Card name="r3_win_rate_by_owner" asOf={asOf}>
          {(r) => chart("bar", r, (row) => owner(row.owner_id), ["win_rate"], fmt.percent, t("report.r3_win_rate_by_owner"))}
        </Card>
        <Card name="r4_stage_funnel" asOf={asOf}>
          {(r) => chart("funnel", r, (row) => stage(row.stage), ["deals_reached"], fmt.count, t("report.r4_stage_funnel"))}
        </Card>
        <Card name="r5_lead_conversion" asOf={asOf}>
          {(r) => {
            // Every month together, by source.
            const by = new Map<string, { created: number; converted: number }>();
            for (const row of r.data) {
              const k = String(row.lead_source ?? "—");
              const e = by.get(k) ?? { created: 0, converted: 0 };
              e.created += num(row.created);
              e.converted += num(row.converted);
              by.set(k, e);
            }
            const rows = [...by].map(([source, e]) => ({ source, conversion_rate: e.created ? e.converted / e.created : 0 }));
            return chart("bar", { ...r, data: rows }, (row) => String(row.source), ["conversion_rate"], fmt.percent, t("report.r5_lead_conversion"));
          }}
        </Card>
        <Card name="r6_top_companies_by_revenue" asOf={asOf}>
          {(r) => (
            <table>
              <tbody>
                {r.data.slice(0, 6).map((row) => (
                  <tr key={String(row.company_id)}>
                    <th scope="row">{row.name}</th>
                    <td>{row.industry}</td>
                    <td className="num">{fmt.moneyWhole(num(row.revenue))}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
        <Card name="r7_contact_engagement" asOf={asOf}>
          {(r) => <Engaged rows={r.data.slice(0, 6)} names={contacts} setNames={setContacts} count={fmt.count} />}
        </Card>
        <Card name="r8_customer_acquisition" asOf={asOf}>
          {(r) => chart("line", r, (row) => String(row.month), ["new_customers"], fmt.count, t("report.r8_customer_acquisition"))}
        </Card>
      </div>
    </section>
  );
}

/** The most engaged contacts, by name (read once each). */
function Engaged({
  rows,
  names,
  setNames,
  count,
}: {
  rows: Report["data"];
  names: Map<string, string>;
  setNames: (f: (m: Map<string, string>) => Map<string, string>) => void;
  count: (v: number) => string;
}) {
  useEffect(() => {
    for (const row of rows) {
      const id = String(row.contact_id);
      if (names.has(id)) continue;
      api<Contact>("GET", `/api/contacts/${id}`).then(
        (c) => setNames((m) => new Map(m).set(id, c.name)),
        () => {},
      );
    }
  }, [rows, names, setNames]);
  return (
    <table>
      <tbody>
        {rows.map((row) => (
          <tr key={String(row.contact_id)}>
            <th scope="row">{names.get(String(row.contact_id)) ?? "…"}</th>
            <td className="num">{count(num(row.total))}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
