// A list of records as the API pages them: a search box and a filter bar (written in the
// API's filter grammar), sorting by a column header, a page at a time by cursor, the
// columns a user chooses (kept in this browser), and rows selected for bulk delete,
// assign and CSV export.
import { useEffect, useId, useMemo, useState, type ReactNode } from "react";
import { api, ApiError, apiFile, saveFile, type Page } from "./api";
import { FilterBar } from "./FilterBar";
import { useI18n } from "./i18n";
import { nextSort, sortOf, toCsv, toFilter, type Condition, type FilterField } from "./listing";
import { FormError } from "./ui";
import { useUsers } from "./users";

export interface Column<T> {
  /** A stable name (kept with the user's column choice). */
  key?: string;
  label: string;
  cell: (row: T) => ReactNode;
  /** The API field a click on the header sorts by. */
  sort?: string;
  numeric?: boolean;
  /** The cell as text, for the CSV export (default: the cell when it is text). */
  text?: (row: T) => string;
  /** Hidden until the user shows it. */
  hidden?: boolean;
}

/** How selected rows are handed to another user. */
export interface Assign {
  /** `ownerId` (a PATCH with the version) or `assignedUser` (`POST …/{id}/assign`). */
  field: "ownerId" | "assignedUser";
}

type Row = { id: string; version?: number };

const COLUMNS_KEY = (path: string) => `crm-rs.columns.${path}`;

function storedColumns(path: string): string[] | null {
  try {
    const v = JSON.parse(localStorage.getItem(COLUMNS_KEY(path)) ?? "null") as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : null;
  } catch {
    return null;
  }
}

/** What a bulk action did: how many went through, and each refusal with its reason. */
interface Outcome {
  done: number;
  failed: { name: string; reason: string }[];
}

function reasonOf(e: unknown): string {
  if (e instanceof ApiError) return e.errors.length > 0 ? e.errors.map((x) => `${x.field}: ${x.message}`).join("; ") : e.message;
  return String(e);
}

function download(name: string, text: string) {
  saveFile(name, new Blob(["\ufeff", text], { type: "text/csv;charset=utf-8" }));
}

export function RecordList<T extends Row>({
  title,
  path,
  columns,
  sort: initialSort = "-updatedAt",
  filter,
  filterFields = [],
  toolbar,
  empty,
  reload = 0,
  nameOf,
  assign,
  bulk = false,
  exportable = false,
}: {
  title: string;
  path: string;
  columns: Column<T>[];
  sort?: string;
  /** A part of the filter the screen fixes (ANDed with the filter bar's). */
  filter?: string;
  /** The fields the filter bar offers (none: no filter bar). */
  filterFields?: FilterField[];
  toolbar?: ReactNode;
  /** What an empty list says (default: "Nothing here yet."). */
  empty?: string;
  reload?: number;
  /** A row's name, for the selection boxes and bulk results. */
  nameOf?: (row: T) => string;
  assign?: Assign;
  /** Rows can be selected for bulk delete and export. */
  bulk?: boolean;
  /** The whole list (its filter, search and sort) can be exported by the server
   * (`GET <path>/export`), however long. */
  exportable?: boolean;
}) {
  const { t } = useI18n();
  const [after, setAfter] = useState<string | null>(null);
  const [q, setQ] = useState("");
  const [typed, setTyped] = useState("");
  const [sort, setSort] = useState(initialSort);
  const [conditions, setConditions] = useState<Condition[]>([]);
  const [page, setPage] = useState<Page<T> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<Map<string, T>>(new Map());
  const [bumped, setBumped] = useState(0);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [busy, setBusy] = useState(false);
  const [assignee, setAssignee] = useState("");
  const users = useUsers();
  const keyOf = (c: Column<T>) => c.key ?? c.label;
  const [shown, setShown] = useState<string[]>(
    () => storedColumns(path) ?? columns.filter((c) => !c.hidden).map(keyOf),
  );
  const visible = columns.filter((c) => c.label === "" || shown.includes(keyOf(c)));
  const searchId = useId();
  const titleId = useId();
  const label = nameOf ?? ((r: T) => r.id);
  const query = useMemo(() => toFilter(conditions, filterFields, filter), [conditions, filterFields, filter]);

  useEffect(() => {
    let live = true;
    const params = new URLSearchParams({ limit: "25", sort });
    if (after) params.set("after", after);
    if (q) params.set("q", q);
    if (query) params.set("filter", query);
    setError(null);
    api<Page<T>>("GET", `${path}?${params}`).then(
      (p) => live && setPage(p),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [path, sort, query, after, q, reload, bumped]);

  const restart = () => {
    setAfter(null);
    setSelected(new Map());
  };
  const pickColumns = (key: string, on: boolean) => {
    const next = on ? [...shown, key] : shown.filter((k) => k !== key);
    setShown(next);
    localStorage.setItem(COLUMNS_KEY(path), JSON.stringify(next));
  };
  const toggle = (row: T, on: boolean) => {
    const next = new Map(selected);
    if (on) next.set(row.id, row);
    else next.delete(row.id);
    setSelected(next);
  };
  const rows = page?.data ?? [];
  const allOnPage = rows.length > 0 && rows.every((r) => selected.has(r.id));

  /** Runs `each` over the selection one at a time, then says what happened. */
  const forEach = async (each: (row: T) => Promise<unknown>) => {
    setBusy(true);
    setOutcome(null);
    const result: Outcome = { done: 0, failed: [] };
    for (const row of selected.values()) {
      try {
        await each(row);
        result.done += 1;
      } catch (e) {
        result.failed.push({ name: label(row), reason: reasonOf(e) });
      }
    }
    setBusy(false);
    setOutcome(result);
    setSelected(new Map());
    setBumped((n) => n + 1);
  };
  const remove = () =>
    forEach((row) => api("DELETE", `${path}/${row.id}`, undefined, row.version !== undefined ? { "If-Match": `"${row.version}"` } : {}));
  const handOver = () => {
    if (!assign || !assignee) return;
    void forEach((row) =>
      assign.field === "assignedUser"
        ? api("POST", `${path}/${row.id}/assign`, { assignedUser: assignee })
        : api("PATCH", `${path}/${row.id}`, { ownerId: assignee, version: row.version }),
    );
  };
  const exportCsv = () => {
    const cols = visible.filter((c) => c.label !== "");
    const text = (c: Column<T>, r: T) => {
      if (c.text) return c.text(r);
      const v = c.cell(r);
      return typeof v === "string" || typeof v === "number" ? String(v) : "";
    };
    const stamp = new Date().toISOString().slice(0, 10);
    const base = path.split("/").pop() ?? "records";
    download(`${base}-${stamp}.csv`, toCsv(cols.map((c) => c.label), [...selected.values()].map((r) => cols.map((c) => text(c, r)))));
  };
  const exportAll = (format: "csv" | "xlsx") => {
    const params = new URLSearchParams({ format, sort });
    if (q) params.set("q", q);
    if (query) params.set("filter", query);
    setBusy(true);
    setError(null);
    apiFile("GET", `${path}/export?${params}`)
      .then(
        (file) => saveFile(file.name, file.blob),
        (e: unknown) => setError(e),
      )
      .finally(() => setBusy(false));
  };
  const current = sortOf(sort);

  return (
    <section aria-labelledby={titleId}>
      <h1 id={titleId}>{title}</h1>
      <div className="toolbar">
        <form
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            restart();
            setQ(typed.trim());
          }}
        >
          <label htmlFor={searchId}>{t("search")}</label>{" "}
          <input id={searchId} type="search" value={typed} onChange={(e) => setTyped(e.target.value)} />
        </form>
        {toolbar}
        {exportable &&
          (["csv", "xlsx"] as const).map((f) => (
            <button key={f} type="button" className="secondary" disabled={busy} onClick={() => exportAll(f)}>
              {t("exportAll", { format: f.toUpperCase() })}
            </button>
          ))}
        <details className="columns-menu">
          <summary>{t("columns")}</summary>
          <fieldset>
            <legend>{t("columnsShown")}</legend>
            {columns
              .filter((c) => c.label !== "")
              .map((c) => (
                <label key={keyOf(c)}>
                  <input type="checkbox" checked={shown.includes(keyOf(c))} onChange={(e) => pickColumns(keyOf(c), e.target.checked)} /> {c.label}
                </label>
              ))}
          </fieldset>
        </details>
      </div>
      {filterFields.length > 0 && (
        <FilterBar
          fields={filterFields}
          users={users}
          onApply={(c) => {
            restart();
            setConditions(c);
          }}
        />
      )}
      {bulk && selected.size > 0 && (
        <div className="toolbar bulk" role="group" aria-label={t("bulkActions")}>
          <span>{t("selectedCount", { n: String(selected.size) })}</span>
          <button type="button" className="danger" disabled={busy} onClick={() => void remove()}>
            {t("deleteSelected")}
          </button>
          {assign && (
            <span className="assign">
              <label htmlFor={`${titleId}-assignee`}>{t("assignTo")}</label>
              <select id={`${titleId}-assignee`} value={assignee} onChange={(e) => setAssignee(e.target.value)}>
                <option value="">—</option>
                {users.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.username}
                  </option>
                ))}
              </select>
              <button type="button" disabled={busy || !assignee} onClick={handOver}>
                {t("assign")}
              </button>
            </span>
          )}
          <button type="button" disabled={busy} onClick={exportCsv}>
            {t("exportCsv")}
          </button>
          <button type="button" className="link" onClick={() => setSelected(new Map())}>
            {t("clearSelection")}
          </button>
        </div>
      )}
      {outcome && (
        <div role="status" className={outcome.failed.length > 0 ? "alert" : "notice"}>
          <p>{t("bulkDone", { n: String(outcome.done) })}</p>
          {outcome.failed.map((f) => (
            <p key={f.name}>{t("bulkFailed", { name: f.name, reason: f.reason })}</p>
          ))}
        </div>
      )}
      <FormError error={error} />
      {!page && !error && <p role="status">{t("loading")}</p>}
      {page && rows.length === 0 && <p>{empty ?? t("nothing")}</p>}
      {page && rows.length > 0 && (
        <table>
          <thead>
            <tr>
              {bulk && (
                <th scope="col" className="pick">
                  <input
                    type="checkbox"
                    aria-label={t("selectPage")}
                    checked={allOnPage}
                    onChange={(e) => {
                      const next = new Map(selected);
                      for (const r of rows) {
                        if (e.target.checked) next.set(r.id, r);
                        else next.delete(r.id);
                      }
                      setSelected(next);
                    }}
                  />
                </th>
              )}
              {visible.map((c) => {
                const by = c.sort && current.field === c.sort ? (current.descending ? "descending" : "ascending") : undefined;
                return (
                  <th scope="col" key={keyOf(c)} className={c.numeric ? "num" : undefined} aria-sort={by}>
                    {c.sort ? (
                      <button
                        type="button"
                        className="link sort"
                        onClick={() => {
                          restart();
                          setSort(nextSort(sort, c.sort ?? ""));
                        }}
                      >
                        {c.label}
                        <span aria-hidden="true">{by === "ascending" ? " ▲" : by === "descending" ? " ▼" : ""}</span>
                      </button>
                    ) : (
                      c.label
                    )}
                  </th>
                );
              })}
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.id} className={selected.has(row.id) ? "selected" : undefined}>
                {bulk && (
                  <td className="pick">
                    <input
                      type="checkbox"
                      aria-label={t("selectRow", { name: label(row) })}
                      checked={selected.has(row.id)}
                      onChange={(e) => toggle(row, e.target.checked)}
                    />
                  </td>
                )}
                {visible.map((c) => (
                  <td key={keyOf(c)} className={c.numeric ? "num" : undefined}>
                    {c.cell(row)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="pager">
        {after && (
          <button type="button" onClick={() => setAfter(null)}>
            {t("first")}
          </button>
        )}
        {page?.pageInfo.hasNextPage && page.pageInfo.endCursor && (
          <button type="button" onClick={() => setAfter(page.pageInfo.endCursor ?? null)}>
            {t("next")}
          </button>
        )}
      </div>
    </section>
  );
}
