// The dashboard: cards of standard and saved reports (charts and tables) with one date
// range and one owner or team filter for every card; a card's data is fetched again only
// when its inputs change. Each user arranges their own (add, remove, widen, drag or move; kept in their
// settings) and may share it as a saved dashboard (`?board=<id>` opens one; whoever it is
// shared with may take it as theirs). People see names, stages in their language and
// money in major units.
import { DndContext, useDraggable, useDroppable, type DragEndEvent } from "@dnd-kit/core";
import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { useSearchParams } from "react-router-dom";
import { api, ApiError, type Contact, type SavedReport } from "../api";
import { useAuth } from "../auth";
import { Chart, type Series } from "../Chart";
import { useDragSensors, useDragWords } from "../dnd";
import { isKey, useI18n, type Key } from "../i18n";
import { Sharing, sharesOf, type Shares } from "../Sharing";
import { Field, fieldError, FormError, useAction } from "../ui";
import { nameOf, useAllUsers, useTeams } from "../users";
import { DEFAULT_LAYOUT, filterQuery, isStandard, moved, STANDARD, withWidths, type CardSpec } from "./dashboardLayout";

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

/** Runs a standard report when its name or the dashboard's filters change. */
function useReport(name: string, q: string) {
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    setReport(null);
    setError(null);
    queued(() => api<Report>("GET", `/api/reports/standard/${name}${q}`)).then(
      (r) => live && setReport(r),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [name, q]);
  return { report, error };
}

/** Reads a saved report when its id changes. */
function useSavedReport(id: string) {
  const [saved, setSaved] = useState<SavedReport | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    api<SavedReport>("GET", `/api/reports/saved/${id}`).then((s) => live && setSaved(s), (e: unknown) => live && setError(e));
    return () => {
      live = false;
    };
  }, [id]);
  return { saved, error };
}

/** Runs a saved report when its id or the dashboard's filters change (they apply to
 * saved cards as to standard ones). */
function useSaved(id: string, q: string) {
  const { saved, error: readError } = useSavedReport(id);
  const [report, setReport] = useState<Report | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    setReport(null);
    setError(null);
    queued(() => api<Report>("GET", `/api/reports/saved/${id}/run${q}`)).then(
      (r) => live && setReport(r),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [id, q]);
  return { saved, report, error: readError ?? error };
}

function Frame({
  card,
  title,
  report,
  error,
  children,
  editing,
}: {
  card: CardSpec;
  title: string;
  report: Report | null;
  error: unknown;
  children: (r: Report) => ReactNode;
  editing?: ReactNode;
}) {
  const { t } = useI18n();
  const { setNodeRef: drop, isOver } = useDroppable({ id: card.report, disabled: !editing });
  const { attributes, listeners, setNodeRef: drag, transform, isDragging } = useDraggable({ id: card.report, disabled: !editing });
  const style = transform ? { transform: `translate(${transform.x}px, ${transform.y}px)` } : undefined;
  const id = `card-${card.report}`;
  return (
    <article
      ref={(el) => {
        drop(el);
        drag(el);
      }}
      style={style}
      className={`dash-card${card.width === 2 ? " wide" : ""}${isOver ? " over" : ""}${isDragging ? " dragging" : ""}`}
      aria-labelledby={id}
      data-report={card.report}
    >
      <div className="card-title">
        {editing && (
          <span className="handle" {...listeners} {...attributes} aria-label={t("drag", { name: title })}>
            ⠿
          </span>
        )}
        <h2 id={id}>{title}</h2>
      </div>
      {editing}
      {error instanceof ApiError && error.status === 404 ? <p className="hint">{t("cardNotShared")}</p> : <FormError error={error} />}
      {!report && !error && <p role="status">{t("loading")}</p>}
      {report && report.rowCount === 0 && <p>{t("noData")}</p>}
      {report && report.rowCount > 0 && children(report)}
    </article>
  );
}

function StandardCard({
  card,
  filters,
  children,
  editing,
}: {
  card: CardSpec;
  filters: string;
  children: (r: Report) => ReactNode;
  editing?: ReactNode;
}) {
  const { t } = useI18n();
  const { report, error } = useReport(card.report, filters);
  return (
    <Frame card={card} title={t(`report.${card.report}` as Key)} report={report} error={error} editing={editing}>
      {children}
    </Frame>
  );
}

/** A saved report's card: drawn with its chart when it has one, else as a table. */
function SavedCard({
  card,
  filters,
  editing,
  draw,
}: {
  card: CardSpec;
  filters: string;
  editing?: ReactNode;
  draw: (r: Report, s: SavedReport) => ReactNode;
}) {
  const { t } = useI18n();
  const { saved, report, error } = useSaved(card.report, filters);
  return (
    <Frame card={card} title={saved?.name ?? t("loading")} report={saved ? report : null} error={error} editing={editing}>
      {(r) => (saved ? draw(r, saved) : null)}
    </Frame>
  );
}

export function Dashboard() {
  const { t, lang } = useI18n();
  const { user } = useAuth();
  // The date range every card covers (days, both included; empty: open).
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [ownerFilter, setOwnerFilter] = useState("");
  const [teamFilter, setTeamFilter] = useState("");
  // Names for the owners' ids (a user who may not list users sees ids shortened); the
  // owner filter offers the same people.
  const people = useAllUsers();
  const teams = useTeams();
  const owners = useMemo(() => new Map(people.map((u) => [u.id, u.username])), [people]);
  const [contacts, setContacts] = useState<Map<string, string>>(new Map());
  const [layout, setLayout] = useState<CardSpec[] | null>(null);
  const [editing, setEditing] = useState(false);
  const [savedReports, setSavedReports] = useState<SavedReport[]>([]);
  const { error, busy, run } = useAction();
  const [notice, setNotice] = useState<string | null>(null);
  const sensors = useDragSensors(4);
  const rtl = lang === "ar";
  // A saved dashboard opened by its link (`?board=`), and those the user may open.
  const [params, setParams] = useSearchParams();
  const boardId = params.get("board");
  const [board, setBoard] = useState<SavedReport | null>(null);
  const [boardError, setBoardError] = useState<unknown>(null);
  const [boards, setBoards] = useState<SavedReport[]>([]);
  const [boardsRead, setBoardsRead] = useState(0);
  const [sharing, setSharing] = useState(false);
  const [boardName, setBoardName] = useState("");
  const [target, setTarget] = useState("");
  // The owner or team filter of every card: the users whose records count.
  // (null: no filter; a team without members owns nothing.)
  const ownerIds = ownerFilter ? ownerFilter : teamFilter ? people.filter((u) => u.teamId === teamFilter).map((u) => u.id).join(",") : null;
  const filters = filterQuery(from, to, ownerIds);
  useEffect(() => {
    if (!user) return;
    api<{ dashboard?: CardSpec[] | null }>("GET", `/api/users/${user.id}/settings`).then(
      (s) => setLayout(s.dashboard ? withWidths(s.dashboard) : DEFAULT_LAYOUT),
      () => setLayout(DEFAULT_LAYOUT),
    );
  }, [user]);
  useEffect(() => {
    api<{ data: SavedReport[] }>("GET", "/api/reports/saved?limit=200").then(
      (p) => setBoards(p.data.filter((r) => r.cards)),
      () => setBoards([]),
    );
  }, [boardsRead]);
  useEffect(() => {
    setBoard(null);
    setBoardError(null);
    if (!boardId) return;
    let live = true;
    api<SavedReport>("GET", `/api/reports/saved/${boardId}`).then(
      (r) => live && (r.cards ? setBoard(r) : setBoardError(t("notADashboard"))),
      (e: unknown) => live && setBoardError(e),
    );
    return () => {
      live = false;
    };
    // `t` only words the error.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [boardId]);
  useEffect(() => {
    if (!editing) return;
    api<{ data: SavedReport[] }>("GET", "/api/reports/saved?limit=200").then((p) => setSavedReports(p.data), () => {});
  }, [editing]);
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
  const col = (c: string) => (isKey(`col.${c}`) ? t(`col.${c}` as Key) : c);
  const describe = (cats: string[], s: Series[], f: (v: number) => string) =>
    cats.map((c, i) => `${c}: ${s.map((x) => f(x.values[i] ?? 0)).join(" / ")}`).join("; ");

  function chart(kind: "bar" | "line" | "funnel", r: Report, cat: (row: Report["data"][number]) => string, cols: string[], f: (v: number) => string, title: string) {
    const categories = r.data.map(cat);
    const series = cols.map((c) => ({ name: col(c), values: r.data.map((row) => num(row[c])) }));
    return <Chart kind={kind} categories={categories} series={series} format={f} rtl={rtl} label={`${title}. ${describe(categories, series, f)}`} />;
  }

  const standard: Record<string, (r: Report) => ReactNode> = {
    r1_pipeline_by_stage: (r) => chart("bar", r, (row) => stage(row.stage), ["total_amount", "weighted_amount"], fmt.money, t("report.r1_pipeline_by_stage")),
    r2_forecast_by_month: (r) => chart("line", r, (row) => String(row.month), ["total_amount", "weighted_amount"], fmt.money, t("report.r2_forecast_by_month")),
    r3_win_rate_by_owner: (r) => chart("bar", r, (row) => owner(row.owner_id), ["win_rate"], fmt.percent, t("report.r3_win_rate_by_owner")),
    r4_stage_funnel: (r) => chart("funnel", r, (row) => stage(row.stage), ["deals_reached"], fmt.count, t("report.r4_stage_funnel")),
    r5_lead_conversion: (r) => {
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
    },
    r6_top_companies_by_revenue: (r) => (
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
    ),
    r7_contact_engagement: (r) => <Engaged rows={r.data.slice(0, 6)} names={contacts} setNames={setContacts} count={fmt.count} />,
    r8_customer_acquisition: (r) => chart("line", r, (row) => String(row.month), ["new_customers"], fmt.count, t("report.r8_customer_acquisition")),
  };
  // A saved report: its chart (money columns in major units, owners by name), or a table.
  const shownCell = (c: string, v: Cell) => (/(^|_)owner_id$/.test(c) ? owner(v) : typeof v === "number" && /cents/.test(c) ? fmt.moneyWhole(v) : String(v ?? ""));
  const drawSaved = (r: Report, s: SavedReport) => {
    const c = s.chart;
    if (c && c.y.length > 0) {
      const cents = c.y.some((y) => /cents/.test(y));
      return chart(c.type, r, (row) => shownCell(c.x, row[c.x]), c.y, cents ? fmt.money : fmt.count, s.name);
    }
    return (
      <table>
        <tbody>
          {r.data.slice(0, 6).map((row, i) => (
            <tr key={i}>
              {r.columns.map((k) => (
                <td key={k.name}>{shownCell(k.name, row[k.name])}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    );
  };

  const boardCards = useMemo(() => withWidths(board?.cards ?? []), [board]);
  const cards: CardSpec[] = boardId ? boardCards : (layout ?? []);
  const titleOf = useCallback(
    (report: string) => (isStandard(report) ? t(`report.${report}` as Key) : (savedReports.find((s) => s.id === report)?.name ?? report.slice(0, 8))),
    [t, savedReports],
  );
  const tools = (card: CardSpec, i: number) => {
    const title = titleOf(card.report);
    return (
      <div className="card-tools" role="group" aria-label={t("arrangeCard", { name: title })}>
        <button type="button" className="link" disabled={i === 0} onClick={() => setLayout(moved(cards, i, i - 1))} aria-label={t("moveEarlier", { name: title })}>
          ◀
        </button>
        <button
          type="button"
          className="link"
          disabled={i === cards.length - 1}
          onClick={() => setLayout(moved(cards, i, i + 1))}
          aria-label={t("moveLater", { name: title })}
        >
          ▶
        </button>
        <button
          type="button"
          className="link"
          onClick={() => setLayout(cards.map((c, j) => (j === i ? { ...c, width: c.width === 2 ? 1 : 2 } : c)))}
          aria-label={card.width === 2 ? t("narrower", { name: title }) : t("wider", { name: title })}
        >
          {card.width === 2 ? "⇥⇤" : "⇤⇥"}
        </button>
        <button type="button" className="link" onClick={() => setLayout(cards.filter((_, j) => j !== i))} aria-label={t("removeItem", { name: title })}>
          ✕
        </button>
      </div>
    );
  };
  const cardName = useCallback((id: string | number) => titleOf(String(id)), [titleOf]);
  const accessibility = useDragWords(cardName);
  const onDragEnd = (e: DragEndEvent) => {
    if (!e.over) return;
    setLayout(moved(cards, cards.findIndex((c) => c.report === e.active.id), cards.findIndex((c) => c.report === e.over?.id)));
  };
  const saveLayout = (next: CardSpec[] | null) =>
    run(async () => {
      if (!user) return;
      const s = await api<{ dashboard?: CardSpec[] | null }>("PATCH", `/api/users/${user.id}/settings`, { dashboard: next });
      setLayout(s.dashboard ?? DEFAULT_LAYOUT);
      setEditing(false);
      setNotice(t("saved"));
    });
  const mine = boards.filter((b) => b.ownerId === user?.id);
  // Shares the user's dashboard: a new saved dashboard, or one of theirs made anew.
  const share = (shares: Shares) =>
    run(async () => {
      const name = boardName.trim();
      const existing = mine.find((b) => b.id === target);
      let saved: SavedReport;
      if (existing) {
        const changed = await api<SavedReport>("PATCH", `/api/reports/saved/${existing.id}`, {
          ...(name ? { name } : {}),
          cards,
          version: existing.version,
        });
        saved = await api<SavedReport>("PUT", `/api/reports/saved/${existing.id}/sharing`, shares, { "If-Match": `"${changed.version}"` });
      } else {
        saved = await api<SavedReport>("POST", "/api/reports/saved", { name, cards, sharedWith: shares });
      }
      setSharing(false);
      setBoardsRead((n) => n + 1);
      setNotice(t("dashboardShared", { name: saved.name }));
    });
  const takeBoard = () =>
    run(async () => {
      if (!user || !board?.cards) return;
      const s = await api<{ dashboard?: CardSpec[] | null }>("PATCH", `/api/users/${user.id}/settings`, { dashboard: board.cards });
      setLayout(s.dashboard ?? DEFAULT_LAYOUT);
      setParams({});
      setNotice(t("dashboardTaken", { name: board.name }));
    });
  const deleteBoard = () =>
    run(async () => {
      if (!board) return;
      await api("DELETE", `/api/reports/saved/${board.id}`, undefined, { "If-Match": `"${board.version}"` });
      setParams({});
      setBoardsRead((n) => n + 1);
      setNotice(t("dashboardDeleted", { name: board.name }));
    });
  const addable = [
    ...STANDARD.filter((r) => !cards.some((c) => c.report === r)).map((r) => ({ value: r as string, label: t(`report.${r}` as Key) })),
    ...savedReports.filter((s) => !cards.some((c) => c.report === s.id)).map((s) => ({ value: s.id, label: s.name })),
  ];

  return (
    <section aria-labelledby="dash-title">
      <h1 id="dash-title">{board ? board.name : t("dashboard")}</h1>
      {(boards.length > 0 || boardId) && !editing && (
        <div className="toolbar boards">
          <label htmlFor="dash-board">{t("dashboards")}</label>
          <select
            id="dash-board"
            value={boardId ?? ""}
            onChange={(e) => {
              setNotice(null);
              setSharing(false);
              setParams(e.target.value ? { board: e.target.value } : {});
            }}
          >
            <option value="">{t("myDashboard")}</option>
            {boardId && !boards.some((b) => b.id === boardId) && <option value={boardId}>{board?.name ?? boardId.slice(0, 8)}</option>}
            {boards.map((b) => (
              <option key={b.id} value={b.id}>
                {b.ownerId === user?.id ? b.name : owners.has(b.ownerId) ? t("boardBy", { name: b.name, owner: nameOf(people, b.ownerId) }) : t("boardShared", { name: b.name })}
              </option>
            ))}
          </select>
          {board && (
            <>
              <button type="button" disabled={busy} onClick={() => void takeBoard()}>
                {t("useAsMine")}
              </button>
              {board.ownerId === user?.id && (
                <button type="button" className="danger" disabled={busy} onClick={() => void deleteBoard()}>
                  {t("deleteDashboard")}
                </button>
              )}
            </>
          )}
        </div>
      )}
      {boardId && board && (
        <p className="hint">
          {board.ownerId === user?.id ? t("yourSharedBoard") : owners.has(board.ownerId) ? t("sharedBoard", { owner: nameOf(people, board.ownerId) }) : t("sharedWithYou")}
        </p>
      )}
      {boardId && <FormError error={boardError} />}
      <div className="toolbar">
        <label htmlFor="dash-from">{t("rangeFrom")}</label>
        <input id="dash-from" type="date" value={from} max={to || undefined} onChange={(e) => setFrom(e.target.value)} />
        <label htmlFor="dash-to">{t("rangeTo")}</label>
        <input id="dash-to" type="date" value={to} min={from || undefined} onChange={(e) => setTo(e.target.value)} />
        {people.length > 1 && (
          <>
            <label htmlFor="dash-owner">{t("owner")}</label>
            <select
              id="dash-owner"
              value={ownerFilter}
              onChange={(e) => {
                setOwnerFilter(e.target.value);
                setTeamFilter("");
              }}
            >
              <option value="">{t("everyone")}</option>
              {people.map((u) => (
                <option key={u.id} value={u.id}>
                  {u.username}
                </option>
              ))}
            </select>
          </>
        )}
        {teams.length > 0 && (
          <>
            <label htmlFor="dash-team">{t("team")}</label>
            <select
              id="dash-team"
              value={teamFilter}
              onChange={(e) => {
                setTeamFilter(e.target.value);
                setOwnerFilter("");
              }}
            >
              <option value="">{t("everyTeam")}</option>
              {teams.map((x) => (
                <option key={x.id} value={x.id}>
                  {x.name}
                </option>
              ))}
            </select>
          </>
        )}
        {boardId ? null : !editing ? (
          <>
            <button
              type="button"
              className="secondary"
              onClick={() => {
                setNotice(null);
                setSharing(false);
                setEditing(true);
              }}
            >
              {t("arrange")}
            </button>
            <button
              type="button"
              className="secondary"
              aria-expanded={sharing}
              onClick={() => {
                setNotice(null);
                setSharing(!sharing);
              }}
            >
              {t("shareDashboard")}
            </button>
          </>
        ) : (
          <>
            <label htmlFor="add-card">{t("addCard")}</label>
            <select
              id="add-card"
              value=""
              onChange={(e) => {
                if (e.target.value) setLayout([...cards, { report: e.target.value, width: 1 }]);
              }}
            >
              <option value="">—</option>
              {addable.map((a) => (
                <option key={a.value} value={a.value}>
                  {a.label}
                </option>
              ))}
            </select>
            <button type="button" disabled={busy} onClick={() => void saveLayout(cards)}>
              {t("saveLayout")}
            </button>
            <button type="button" className="link" disabled={busy} onClick={() => void saveLayout(null)}>
              {t("defaultLayout")}
            </button>
          </>
        )}
      </div>
      {sharing && !boardId && (
        <section className="share-board" aria-label={t("shareDashboard")}>
          <Field label={t("dashboardName")} value={boardName} maxLength={200} onChange={(e) => setBoardName(e.target.value)} error={fieldError(error, "name")} />
          {mine.length > 0 && (
            <div className="field">
              <label htmlFor="share-target">{t("shareAs")}</label>
              <select id="share-target" value={target} onChange={(e) => setTarget(e.target.value)}>
                <option value="">{t("newSharedBoard")}</option>
                {mine.map((b) => (
                  <option key={b.id} value={b.id}>
                    {t("replaceBoard", { name: b.name })}
                  </option>
                ))}
              </select>
            </div>
          )}
          <Sharing key={target} initial={sharesOf(mine.find((b) => b.id === target))} onSave={share} busy={busy} action={t("shareDashboard")} />
        </section>
      )}
      <FormError error={error} fields={sharing ? ["name"] : []} />
      {notice && <p role="status">{notice}</p>}
      {!layout && !boardId && <p role="status">{t("loading")}</p>}
      <DndContext sensors={sensors} onDragEnd={onDragEnd} accessibility={accessibility}>
        <div className="dash">
          {cards.map((card, i) =>
            isStandard(card.report) ? (
              <StandardCard key={card.report} card={card} filters={filters} editing={editing ? tools(card, i) : undefined}>
                {standard[card.report] ?? (() => null)}
              </StandardCard>
            ) : (
              <SavedCard key={card.report} card={card} filters={filters} editing={editing ? tools(card, i) : undefined} draw={drawSaved} />
            ),
          )}
        </div>
      </DndContext>
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
