// A list of records as the API pages them: a search box, newest first or by the given
// sort, a page at a time by cursor, with the columns a screen chooses.
import { useEffect, useId, useState, type ReactNode } from "react";
import { api, type Page } from "./api";
import { useI18n } from "./i18n";
import { FormError } from "./ui";

export interface Column<T> {
  label: string;
  cell: (row: T) => ReactNode;
  numeric?: boolean;
}

export function RecordList<T extends { id: string }>({
  title,
  path,
  columns,
  sort = "-updatedAt",
  filter,
  toolbar,
  empty,
  reload = 0,
}: {
  title: string;
  path: string;
  columns: Column<T>[];
  sort?: string;
  filter?: string;
  toolbar?: ReactNode;
  /** What an empty list says (default: "Nothing here yet."). */
  empty?: string;
  reload?: number;
}) {
  const { t } = useI18n();
  const [after, setAfter] = useState<string | null>(null);
  const [q, setQ] = useState("");
  const [typed, setTyped] = useState("");
  const [page, setPage] = useState<Page<T> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const searchId = useId();
  const titleId = useId();
  useEffect(() => {
    let live = true;
    const params = new URLSearchParams({ limit: "25", sort });
    if (after) params.set("after", after);
    if (q) params.set("q", q);
    if (filter) params.set("filter", filter);
    api<Page<T>>("GET", `${path}?${params}`).then(
      (p) => live && setPage(p),
      (e: unknown) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [path, sort, filter, after, q, reload]);
  return (
    <section aria-labelledby={titleId}>
      <h1 id={titleId}>{title}</h1>
      <div className="toolbar">
        <form
          role="search"
          onSubmit={(e) => {
            e.preventDefault();
            setAfter(null);
            setQ(typed.trim());
          }}
        >
          <label htmlFor={searchId}>{t("search")}</label>{" "}
          <input id={searchId} type="search" value={typed} onChange={(e) => setTyped(e.target.value)} />
        </form>
        {toolbar}
      </div>
      <FormError error={error} />
      {!page && !error && <p role="status">{t("loading")}</p>}
      {page && page.data.length === 0 && <p>{empty ?? t("nothing")}</p>}
      {page && page.data.length > 0 && (
        <table>
          <thead>
            <tr>
              {columns.map((c) => (
                <th scope="col" key={c.label} className={c.numeric ? "num" : undefined}>
                  {c.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {page.data.map((row) => (
              <tr key={row.id}>
                {columns.map((c) => (
                  <td key={c.label} className={c.numeric ? "num" : undefined}>
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
