// The contacts list: newest first, a page at a time.
import { useEffect, useId, useState } from "react";
import { Link } from "react-router-dom";
import { api, type Contact, type Page } from "../api";
import { useI18n } from "../i18n";
import { FormError } from "../ui";

export function Contacts() {
  const { t, lang } = useI18n();
  const [after, setAfter] = useState<string | null>(null);
  const [q, setQ] = useState("");
  const [typed, setTyped] = useState("");
  const searchId = useId();
  const [page, setPage] = useState<Page<Contact> | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    const params = new URLSearchParams({ limit: "25", sort: "-updatedAt" });
    if (after) params.set("after", after);
    if (q) params.set("q", q);
    api<Page<Contact>>("GET", `/api/contacts?${params}`)
      .then((p) => live && setPage(p))
      .catch((e: unknown) => live && setError(e));
    return () => {
      live = false;
    };
  }, [after, q]);
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  return (
    <section aria-labelledby="contacts-title">
      <h1 id="contacts-title">{t("contacts")}</h1>
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
        <Link className="button" to="/contacts/new">
          {t("newContact")}
        </Link>
      </div>
      <FormError error={error} />
      {!page && !error && <p role="status">{t("loading")}</p>}
      {page && page.data.length === 0 && <p>{t("noContacts")}</p>}
      {page && page.data.length > 0 && (
        <table>
          <thead>
            <tr>
              <th scope="col">{t("name")}</th>
              <th scope="col">{t("email")}</th>
              <th scope="col">{t("phone")}</th>
              <th scope="col">{t("stage")}</th>
              <th scope="col">{t("updated")}</th>
            </tr>
          </thead>
          <tbody>
            {page.data.map((c) => (
              <tr key={c.id}>
                <td>
                  <Link to={`/contacts/${c.id}`}>{c.name}</Link>
                </td>
                <td>{c.email ?? ""}</td>
                <td>{c.phoneNumber ?? ""}</td>
                <td>{c.lifecycleStage ?? ""}</td>
                <td>{date.format(new Date(c.updatedAt))}</td>
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
