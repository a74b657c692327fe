// A contact's likely duplicates and why (same email, phone, name at the same company or
// email domain); one merged into the contact shown (its empty fields filled, its deals,
// tasks, interactions, campaign history and files moved over), and that merge undone.
import { useCallback, useEffect, useId, useState } from "react";
import { Link } from "react-router-dom";
import { api, type Contact, type ContactMerge, type DuplicateCandidate } from "./api";
import { useI18n, type Key } from "./i18n";
import { FormError, useAction } from "./ui";

export function Duplicates({ id, onChange }: { id: string; onChange: (c: Contact) => void }) {
  const { t } = useI18n();
  const titleId = useId();
  const [found, setFound] = useState<DuplicateCandidate[] | null>(null);
  const [merge, setMerge] = useState<{ merge: ContactMerge; name: string } | null>(null);
  const { error, setError, busy, run } = useAction();
  const load = useCallback(() => {
    api<{ data: DuplicateCandidate[] }>("GET", `/api/contacts/${id}/duplicates`).then((p) => setFound(p.data), setError);
  }, [id, setError]);
  useEffect(load, [load]);
  const mergeIn = (c: DuplicateCandidate) =>
    run(async () => {
      const done = await api<{ contact: Contact; merge: ContactMerge }>("POST", `/api/contacts/${id}/merge`, {
        mergeIds: [c.contact.id],
      });
      setMerge({ merge: done.merge, name: c.contact.name });
      onChange(done.contact);
      load();
    });
  const undo = () =>
    run(async () => {
      if (!merge) return;
      onChange(await api<Contact>("POST", `/api/contacts/merges/${merge.merge.id}/undo`));
      setMerge(null);
      load();
    });
  if (found === null && !error) return null;
  return (
    <section className="duplicates" aria-labelledby={titleId}>
      <h2 id={titleId}>{t("duplicates")}</h2>
      <FormError error={error} />
      {merge && (
        <div role="status" className="notice">
          <p>{t("mergedIn", { name: merge.name })}</p>
          <button type="button" disabled={busy} onClick={() => void undo()}>
            {t("undoMerge")}
          </button>
        </div>
      )}
      {found && found.length === 0 && <p>{t("noDuplicates")}</p>}
      {found && found.length > 0 && (
        <ul>
          {found.map((c) => (
            <li key={c.contact.id}>
              <Link to={`/contacts/${c.contact.id}`}>{c.contact.name}</Link>
              {c.contact.email ? ` · ${c.contact.email}` : ""}
              <span className="muted"> — {c.reasons.map((r) => t(`reason.${r}` as Key)).join(", ")}</span>{" "}
              <button
                type="button"
                disabled={busy}
                aria-label={t("mergeThis", { name: c.contact.name })}
                onClick={() => void mergeIn(c)}
              >
                {t("merge")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
