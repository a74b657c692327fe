// What the campaigns and billing areas share: a page with the area's own tabs, a title
// and its actions; a `{data}` list read from the API; who may change things (the
// standard policy: managers and admins) and how a moment is written.
import { useEffect, useId, useState, type ReactNode } from "react";
import { NavLink } from "react-router-dom";
import { api } from "./api";
import { useAuth } from "./auth";
import { useI18n } from "./i18n";

/** May the signed-in user change this area's records (managers and admins)? */
export function useMayEdit(): boolean {
  const { user } = useAuth();
  return user?.role === "admin" || user?.role === "manager";
}

/** A moment (or a date) in the user's language: "Dec 6, 2026, 10:30 AM". */
export function useWhen() {
  const { lang } = useI18n();
  const f = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  return (v?: string | null) => (v ? f.format(new Date(v)) : "—");
}

/** Reads a `{data}` list (again when `path` or `reload` changes). */
export function useList<T>(path: string, reload = 0): { rows: T[] | null; error: unknown } {
  const [rows, setRows] = useState<T[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    setRows(null);
    api<{ data: T[] }>("GET", path).then(
      (p) => live && setRows(p.data),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [path, reload]);
  return { rows, error };
}

/** A page of an area: its tabs (`[path, label]`, the first matched exactly), a title, actions. */
export function Area({
  label,
  tabs,
  title,
  actions,
  children,
}: {
  label: string;
  tabs: [string, string][];
  title: string;
  actions?: ReactNode;
  children: ReactNode;
}) {
  const id = useId();
  return (
    <section aria-labelledby={id} className="area">
      <nav className="tabs" aria-label={label}>
        {tabs.map(([to, name], i) => (
          <NavLink key={to} to={to} end={i === 0}>
            {name}
          </NavLink>
        ))}
      </nav>
      <div className="toolbar">
        <h1 id={id}>{title}</h1>
        {actions}
      </div>
      {children}
    </section>
  );
}

/** A column of a [`Table`]: its header, and what a row shows in it. */
export interface TableColumn<T> {
  label: string;
  /** Right-aligned figures. */
  numeric?: boolean;
  /** A header read by screen readers only (a column of buttons). */
  hiddenLabel?: boolean;
  cell: (row: T) => ReactNode;
}

/** Rows as a table with a header row; `empty` says what no rows means. */
export function Table<T extends { id: string }>({ columns, rows, empty }: { columns: (TableColumn<T> | false)[]; rows: T[] | null; empty: string }) {
  const shown = columns.filter((c): c is TableColumn<T> => c !== false);
  if (!rows) return null;
  if (rows.length === 0) return <p>{empty}</p>;
  return (
    <table>
      <thead>
        <tr>
          {shown.map((c) => (
            <th key={c.label} scope="col" className={c.numeric ? "num" : undefined}>
              {c.hiddenLabel ? <span className="visually-hidden">{c.label}</span> : c.label}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.id}>
            {shown.map((c) => (
              <td key={c.label} className={c.numeric ? "num" : undefined}>
                {c.cell(r)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
