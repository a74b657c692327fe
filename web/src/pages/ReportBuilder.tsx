// The report builder: pick a source (and the tables it refers to), drag fields into
// Group by, Values and Filters (or add them from each zone's list, by keyboard), sort and
// limit; a live preview table and chart; save, share and export. It writes the same
// `ReportSpec` the API takes (`POST /api/reports/run`, saved reports).
import {
  DndContext,
  KeyboardSensor,
  PointerSensor,
  useDraggable,
  useDroppable,
  useSensor,
  useSensors,
  type DragEndEvent,
} from "@dnd-kit/core";
import { useEffect, useId, useMemo, useState, type ReactNode } from "react";
import { useNavigate, useParams } from "react-router-dom";
import { api, apiFile, ApiError, saveFile, type ReportResult, type SavedReport } from "../api";
import { useAuth } from "../auth";
import { Chart } from "../Chart";
import { Sharing, sharesOf, type Shares } from "../Sharing";
import { blankCondition, ConditionRows } from "../FilterBar";
import { useI18n, type Key } from "../i18n";
import {
  AGGREGATES,
  BUCKETS,
  defaultValue,
  draftOf,
  emptyDraft,
  fieldsOf,
  filterFieldsOf,
  isTime,
  specOf,
  type AggFn,
  type Bucket,
  type CatalogField,
  type CatalogSource,
  type Draft,
} from "../reportSpec";
import { FormError, useAction } from "../ui";
import { nameOf, useUsers } from "../users";

type ChartKind = "bar" | "line" | "funnel";
type Zone = "groupBy" | "values" | "filters";
/** Columns holding a user's id: shown by name. */
const USER_COLUMNS = /(^|_|\.)(owner_id|changed_by|assigned_user)$/;

function Chip({ field }: { field: CatalogField }) {
  const { t } = useI18n();
  const { attributes, listeners, setNodeRef, transform, isDragging } = useDraggable({ id: `field:${field.name}` });
  const style = transform ? { transform: `translate(${transform.x}px, ${transform.y}px)` } : undefined;
  return (
    <li className="chip-slot">
      <span ref={setNodeRef} style={style} className={`chip${isDragging ? " dragging" : ""}`} data-field={field.name} {...listeners} {...attributes}>
        {field.name}
        <span className="chip-type">{t(`type.${field.type}` as Key)}</span>
      </span>
    </li>
  );
}

function DropZone({ id, title, children, adder }: { id: Zone; title: string; children: ReactNode; adder: ReactNode }) {
  const { setNodeRef, isOver } = useDroppable({ id });
  return (
    <section ref={setNodeRef} className={`zone${isOver ? " over" : ""}`} aria-label={title} data-zone={id}>
      <h2>{title}</h2>
      {children}
      {adder}
    </section>
  );
}

/** A list adding one field of the draft to a zone (the keyboard's way in). */
function AddField({ zone, fields, onAdd, extra }: { zone: Zone; fields: CatalogField[]; onAdd: (name: string) => void; extra?: ReactNode }) {
  const { t } = useI18n();
  const id = useId();
  return (
    <div className="add-field">
      <label htmlFor={id}>{t("addField")}</label>
      <select
        id={id}
        value=""
        data-zone={zone}
        onChange={(e) => {
          if (e.target.value) onAdd(e.target.value);
        }}
      >
        <option value="">—</option>
        {extra}
        {fields.map((f) => (
          <option key={f.name} value={f.name}>
            {f.name}
          </option>
        ))}
      </select>
    </div>
  );
}

export function ReportBuilder() {
  const { id } = useParams();
  const isNew = !id || id === "new";
  const { t, lang } = useI18n();
  const { user } = useAuth();
  const users = useUsers();
  const navigate = useNavigate();
  const [catalog, setCatalog] = useState<CatalogSource[]>([]);
  const [draft, setDraft] = useState<Draft>(() => emptyDraft());
  const [name, setName] = useState("");
  const [chartKind, setChartKind] = useState<ChartKind>("bar");
  const [saved, setSaved] = useState<SavedReport | null>(null);
  const [result, setResult] = useState<ReportResult | null>(null);
  const [previewError, setPreviewError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { error, busy, run } = useAction();
  const sensors = useSensors(useSensor(PointerSensor, { activationConstraint: { distance: 4 } }), useSensor(KeyboardSensor));
  const nameId = useId();

  useEffect(() => {
    api<{ data: CatalogSource[] }>("GET", "/api/reports/catalog").then((c) => setCatalog(c.data), setPreviewError);
  }, []);
  useEffect(() => {
    if (isNew || catalog.length === 0) return;
    api<SavedReport>("GET", `/api/reports/saved/${id}`).then((r) => {
      // A saved dashboard opens on the dashboard.
      if (r.cards) {
        navigate(`/dashboard?board=${r.id}`, { replace: true });
        return;
      }
      setSaved(r);
      setName(r.name);
      if (r.chart) setChartKind(r.chart.type);
      if (r.spec) setDraft(draftOf(r.spec as unknown as Parameters<typeof draftOf>[0], catalog));
    }, setPreviewError);
  }, [id, isNew, catalog, navigate]);

  const fields = useMemo(() => fieldsOf(catalog, draft), [catalog, draft]);
  const filterFields = useMemo(() => filterFieldsOf(fields), [fields]);
  const spec = useMemo(() => specOf(draft, fields, name || undefined), [draft, fields, name]);
  const specText = JSON.stringify(spec);
  const source = catalog.find((s) => s.name === draft.source);

  // The preview follows the spec, a moment after the last change.
  useEffect(() => {
    if (!spec) {
      setResult(null);
      setPreviewError(null);
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      api<ReportResult>("POST", "/api/reports/run", spec).then(
        (r) => {
          if (!live) return;
          setResult(r);
          setPreviewError(null);
        },
        (e: unknown) => live && setPreviewError(e),
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // specText stands for spec.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [specText]);

  const add = (zone: Zone, fieldName: string) => {
    const f = fields.find((x) => x.name === fieldName);
    setNotice(null);
    if (zone === "values") {
      if (fieldName === "*") setDraft({ ...draft, values: [...draft.values, { fn: "count" }] });
      else if (f) setDraft({ ...draft, values: [...draft.values, defaultValue(f)] });
    } else if (zone === "groupBy" && f) {
      if (draft.groupBy.some((g) => g.field === f.name)) return;
      setDraft({ ...draft, groupBy: [...draft.groupBy, isTime(f) ? { field: f.name, bucket: "month" } : { field: f.name }] });
      if (isTime(f) && draft.groupBy.length === 0) setChartKind("line");
    } else if (zone === "filters") {
      const ff = filterFields.find((x) => x.field === fieldName);
      if (ff) setDraft({ ...draft, conditions: [...draft.conditions, blankCondition(ff)] });
    }
  };
  const onDragEnd = (e: DragEndEvent) => {
    const field = String(e.active.id).replace(/^field:/, "");
    if (e.over) add(e.over.id as Zone, field);
  };

  // The preview's columns: the groups first, then the values.
  const columns = result?.columns ?? [];
  const groups = draft.groupBy.length;
  const xColumn = groups > 0 ? columns[0]?.name : undefined;
  const yColumns = columns.slice(groups).filter((c) => c.type === "integer" || c.type === "number").map((c) => c.name).slice(0, 6);
  const numbers = useMemo(() => new Intl.NumberFormat(lang, { maximumFractionDigits: 2 }), [lang]);
  // Amounts are minor units: shown in major units.
  const shown = (column: string, v: unknown): string => {
    if (v === null || v === undefined) return "";
    if (USER_COLUMNS.test(column)) return nameOf(users, String(v));
    if (typeof v === "number") return numbers.format(/cents/.test(column) ? v / 100 : v);
    return String(v);
  };
  const rows = (result?.data ?? []) as Record<string, unknown>[];
  const chart =
    xColumn && yColumns.length > 0 && rows.length > 0 ? (
      <Chart
        kind={chartKind}
        categories={rows.map((r) => shown(xColumn, r[xColumn]))}
        series={yColumns.map((c) => ({ name: c, values: rows.map((r) => (/cents/.test(c) ? Number(r[c] ?? 0) / 100 : Number(r[c] ?? 0))) }))}
        format={(v) => numbers.format(v)}
        rtl={lang === "ar"}
        label={`${name || t("preview")}: ${rows
          .slice(0, 20)
          .map((r) => `${shown(xColumn, r[xColumn])} ${yColumns.map((c) => shown(c, r[c])).join(" / ")}`)
          .join("; ")}`}
      />
    ) : null;

  const mine = !saved || saved.ownerId === user?.id;
  const save = () =>
    run(async () => {
      if (!spec) return;
      const chartSpec = xColumn && yColumns.length > 0 ? { type: chartKind, x: xColumn, y: chartKind === "funnel" ? yColumns.slice(0, 1) : yColumns } : null;
      if (saved && mine) {
        setSaved(await api<SavedReport>("PATCH", `/api/reports/saved/${saved.id}`, { name, spec, chart: chartSpec, version: saved.version }));
        setNotice(t("saved"));
      } else {
        const made = await api<SavedReport>("POST", "/api/reports/saved", { name, spec, ...(chartSpec ? { chart: chartSpec } : {}) });
        setSaved(made);
        setNotice(t("saved"));
        navigate(`/reports/${made.id}`, { replace: true });
      }
    });
  const share = (shares: Shares) =>
    run(async () => {
      if (!saved) return;
      const next = await api<SavedReport>("PUT", `/api/reports/saved/${saved.id}/sharing`, shares, { "If-Match": `"${saved.version}"` });
      setSaved(next);
      setNotice(t("shared"));
    });
  const exportAs = (format: "csv" | "xlsx" | "pdf") =>
    run(async () => {
      if (!spec) return;
      const file = await apiFile("POST", `/api/reports/run?format=${format}`, spec);
      saveFile(file.name, file.blob);
    });

  return (
    <section aria-labelledby="builder-title" className="builder">
      <h1 id="builder-title">{saved ? saved.name : t("reportBuilder")}</h1>
      <DndContext sensors={sensors} onDragEnd={onDragEnd}>
        <div className="builder-grid">
          <aside className="palette" aria-labelledby="palette-title">
            <div className="field">
              <label htmlFor="report-source">{t("source")}</label>
              <select
                id="report-source"
                value={draft.source}
                onChange={(e) => {
                  setDraft(emptyDraft(e.target.value));
                  setResult(null);
                }}
              >
                {catalog.map((s) => (
                  <option key={s.name} value={s.name}>
                    {s.name}
                  </option>
                ))}
              </select>
            </div>
            {source && source.joins.length > 0 && (
              <fieldset className="joins">
                <legend>{t("joinTables")}</legend>
                {source.joins.map((j) => (
                  <label key={j}>
                    <input
                      type="checkbox"
                      checked={draft.joins.includes(j)}
                      onChange={(e) => setDraft({ ...draft, joins: e.target.checked ? [...draft.joins, j] : draft.joins.filter((x) => x !== j) })}
                    />{" "}
                    {j}
                  </label>
                ))}
              </fieldset>
            )}
            <h2 id="palette-title">{t("fieldsPalette")}</h2>
            <p className="hint">{t("dragHint")}</p>
            <ul className="chips">
              {fields.map((f) => (
                <Chip key={f.name} field={f} />
              ))}
            </ul>
          </aside>
          <div className="zones">
            <DropZone id="groupBy" title={t("groupBy")} adder={<AddField zone="groupBy" fields={fields} onAdd={(f) => add("groupBy", f)} />}>
              <ul className="items">
                {draft.groupBy.map((g, i) => {
                  const f = fields.find((x) => x.name === g.field);
                  return (
                    <li key={g.field}>
                      <span className="item-name">{g.field}</span>
                      {isTime(f) && (
                        <select
                          aria-label={t("bucket", { name: g.field })}
                          value={g.bucket ?? ""}
                          onChange={(e) =>
                            setDraft({
                              ...draft,
                              groupBy: draft.groupBy.map((x, j) => (j === i ? { field: x.field, ...(e.target.value ? { bucket: e.target.value as Bucket } : {}) } : x)),
                            })
                          }
                        >
                          <option value="">{t("bucket.none")}</option>
                          {BUCKETS.map((b) => (
                            <option key={b} value={b}>
                              {t(`bucket.${b}` as Key)}
                            </option>
                          ))}
                        </select>
                      )}
                      <button
                        type="button"
                        className="link"
                        aria-label={t("removeItem", { name: g.field })}
                        onClick={() => setDraft({ ...draft, groupBy: draft.groupBy.filter((_, j) => j !== i) })}
                      >
                        ✕
                      </button>
                    </li>
                  );
                })}
              </ul>
            </DropZone>
            <DropZone
              id="values"
              title={t("values")}
              adder={<AddField zone="values" fields={fields} onAdd={(f) => add("values", f)} extra={<option value="*">{t("rowCount")}</option>} />}
            >
              <ul className="items">
                {draft.values.map((v, i) => {
                  const label = v.field ?? t("rowCount");
                  const f = fields.find((x) => x.name === v.field);
                  const fns = !v.field ? (["count"] as AggFn[]) : f?.type === "integer" ? AGGREGATES : AGGREGATES.filter((a) => ["count", "count_distinct", "min", "max"].includes(a));
                  return (
                    <li key={`${v.field ?? "*"}-${i}`}>
                      <select
                        aria-label={t("aggregateOf", { name: label })}
                        value={v.fn}
                        onChange={(e) => setDraft({ ...draft, values: draft.values.map((x, j) => (j === i ? { ...x, fn: e.target.value as AggFn } : x)) })}
                      >
                        {fns.map((a) => (
                          <option key={a} value={a}>
                            {t(`agg.${a}` as Key)}
                          </option>
                        ))}
                      </select>
                      <span className="item-name">{label}</span>
                      <button
                        type="button"
                        className="link"
                        aria-label={t("removeItem", { name: label })}
                        onClick={() => setDraft({ ...draft, values: draft.values.filter((_, j) => j !== i) })}
                      >
                        ✕
                      </button>
                    </li>
                  );
                })}
              </ul>
            </DropZone>
            <DropZone id="filters" title={t("filters")} adder={null}>
              {draft.rawFilter && <p className="hint"><code>{draft.rawFilter}</code></p>}
              <ConditionRows fields={filterFields} users={users} conditions={draft.conditions} onChange={(c) => setDraft({ ...draft, conditions: c })} />
            </DropZone>
            <div className="toolbar sort-limit">
              <label htmlFor="report-sort">{t("sortBy")}</label>
              <select id="report-sort" value={draft.sort} onChange={(e) => setDraft({ ...draft, sort: e.target.value })}>
                <option value="">{t("defaultOrder")}</option>
                {columns.map((c) => (
                  <option key={c.name} value={c.name}>
                    {c.name}
                  </option>
                ))}
              </select>
              <label>
                <input type="checkbox" checked={draft.descending} onChange={(e) => setDraft({ ...draft, descending: e.target.checked })} /> {t("largestFirst")}
              </label>
              <label htmlFor="report-limit">{t("limit")}</label>
              <input
                id="report-limit"
                type="number"
                min={1}
                max={1000000}
                value={draft.limit}
                onChange={(e) => setDraft({ ...draft, limit: Math.max(1, Number(e.target.value) || 1) })}
              />
            </div>
          </div>
        </div>
      </DndContext>

      <section className="preview" aria-labelledby="preview-title">
        <h2 id="preview-title">{t("preview")}</h2>
        <FormError error={previewError} />
        {!spec && <p>{t("startHint")}</p>}
        {result && (
          <>
            <div className="toolbar">
              <span role="status">{t("rowsShown", { n: String(result.rowCount) })}</span>
              {xColumn && (
                <>
                  <label htmlFor="chart-kind">{t("chartKind")}</label>
                  <select id="chart-kind" value={chartKind} onChange={(e) => setChartKind(e.target.value as ChartKind)}>
                    {(["bar", "line", "funnel"] as const).map((k) => (
                      <option key={k} value={k}>
                        {t(`chart.${k}` as Key)}
                      </option>
                    ))}
                  </select>
                </>
              )}
            </div>
            {chart}
            <table>
              <thead>
                <tr>
                  {columns.map((c) => (
                    <th scope="col" key={c.name} className={c.type === "integer" || c.type === "number" ? "num" : undefined}>
                      {c.name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {rows.slice(0, 200).map((r, i) => (
                  <tr key={i}>
                    {columns.map((c) => (
                      <td key={c.name} className={c.type === "integer" || c.type === "number" ? "num" : undefined}>
                        {shown(c.name, r[c.name])}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </section>

      <section className="save" aria-labelledby="save-title">
        <h2 id="save-title" className="visually-hidden">
          {t("saveReport")}
        </h2>
        {error instanceof ApiError && error.code === "version_conflict" ? (
          <div role="alert" className="alert">
            <p>{t("recordConflict")}</p>
          </div>
        ) : (
          <FormError error={error} />
        )}
        <div className="toolbar">
          <label htmlFor={nameId}>{t("reportName")}</label>
          <input id={nameId} value={name} onChange={(e) => setName(e.target.value)} />
          <button type="button" disabled={busy || !spec || !name.trim()} onClick={() => void save()}>
            {mine ? t("saveReport") : t("saveCopy")}
          </button>
          {(["csv", "xlsx", "pdf"] as const).map((f) => (
            <button key={f} type="button" className="secondary" disabled={busy || !spec} onClick={() => void exportAs(f)}>
              {t("exportAs", { format: f.toUpperCase() })}
            </button>
          ))}
        </div>
        {notice && <p role="status">{notice}</p>}
        {saved && mine && <Sharing key={saved.id} initial={sharesOf(saved)} onSave={share} busy={busy} />}
      </section>
    </section>
  );
}

