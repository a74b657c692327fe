// The contacts list: newest first, a page at a time.
import { useEffect, useState } from "react";
import { api, type Contact, type Page } from "../api";
import { useI18n } from "../i18n";
import { FormError } from "../ui";

export function Contacts() {
  const { t, lang } = useI18n();
  const [after, setAfter] = useState<string | null>(null);
  const [page, setPage] = useState<Page<Contact> | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    let live = true;
    const q = new URLSearchParams({ limit: "25", sort: "-updatedAt" });
    if (after) q.set("after", after);
    api<Page<Contact>>("GET", `/api/contacts?${q}`)
      .then((p) => live && setPage(p))
      .catch((e: unknown) => live && setError(e));
    return () => {
      live = false;
    };
  }, [after]);
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  return (
    <section aria-labelledby="contacts-title">
      <h1 id="contacts-title">{t("contacts")}</h1>
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
                <td>{c.name}</td>
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
          <button type="button" onClick={() => setAfter(page.pageInfo.endCursor)}>
            {t("next")}
          </button>
        )}
      </div>
    </section>
  );
}
