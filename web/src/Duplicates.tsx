// A contact's likely duplicates and why (same email, phone, name at the same company or
// email domain); one merged into the contact shown (its empty fields filled, its deals,
// tasks, interactions, campaign history and files moved over), the fields where the two
// differ chosen one by one first if wished, and that merge undone.
import { useCallback, useEffect, useId, useState } from "react";
import { Link } from "react-router-dom";
import { api, type Contact, type ContactMerge, type DuplicateCandidate } from "./api";
import { useI18n, type Key } from "./i18n";
import { FormError, useAction } from "./ui";

/** The fields a person compares before a merge, as the API names them. */
const COMPARED = ["name", "email", "phoneNumber", "jobTitle", "leadSource", "lifecycleStage"] as const;
const LABELS: Record<(typeof COMPARED)[number], Key> = {
  name: "name",
  email: "email",
  phoneNumber: "phone",
  jobTitle: "jobTitle",
  leadSource: "leadSource",
  lifecycleStage: "stage",
};

/** The fields whose values differ where the other contact has one: the choices to offer. */
export function differing(mine: Partial<Contact>, theirs: Partial<Contact>): (typeof COMPARED)[number][] {
  const text = (v: unknown) => (v === null || v === undefined ? "" : String(v));
  return COMPARED.filter((f) => text(theirs[f]) !== "" && text(mine[f]) !== text(theirs[f]));
}

export function Duplicates({
  id,
  current,
  onChange,
}: {
  id: string;
  /** The contact shown (the survivor of a merge). */
  current: Partial<Contact>;
  onChange: (c: Contact) => void;
}) {
  const { t } = useI18n();
  const [comparing, setComparing] = useState<string | null>(null);
  // For each field compared, whether the other contact's value is taken.
  const [taken, setTaken] = useState<Record<string, boolean>>({});
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
      const chosen = comparing === c.contact.id ? Object.keys(taken).filter((f) => taken[f]) : [];
      const done = await api<{ contact: Contact; merge: ContactMerge }>("POST", `/api/contacts/${id}/merge`, {
        mergeIds: [c.contact.id],
        fields: Object.fromEntries(chosen.map((f) => [f, c.contact.id])),
      });
      setComparing(null);
      setTaken({});
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
              {differing(current, c.contact).length > 0 && (
                <button
                  type="button"
                  aria-expanded={comparing === c.contact.id}
                  aria-label={t("compareWith", { name: c.contact.name })}
                  onClick={() => {
                    setComparing(comparing === c.contact.id ? null : c.contact.id);
                    setTaken({});
                  }}
                >
                  {t("compare")}
                </button>
              )}
              <button
                type="button"
                disabled={busy}
                aria-label={t("mergeThis", { name: c.contact.name })}
                onClick={() => void mergeIn(c)}
              >
                {t("merge")}
              </button>
              {comparing === c.contact.id && (
                <table className="compare">
                  <caption>{t("compareCaption")}</caption>
                  <thead>
                    <tr>
                      <th scope="col">{t("field")}</th>
                      <th scope="col">{t("keepThis")}</th>
                      <th scope="col">{t("takeTheirs", { name: c.contact.name })}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {differing(current, c.contact).map((f) => {
                      const group = `${c.contact.id}-${f}`;
                      const shown = (v: unknown) => (v === null || v === undefined || v === "" ? "—" : String(v));
                      return (
                        <tr key={f}>
                          <th scope="row">{t(LABELS[f])}</th>
                          <td>
                            <label>
                              <input type="radio" name={group} checked={!taken[f]} onChange={() => setTaken({ ...taken, [f]: false })} />{" "}
                              {shown(current[f])}
                            </label>
                          </td>
                          <td>
                            <label>
                              <input type="radio" name={group} checked={!!taken[f]} onChange={() => setTaken({ ...taken, [f]: true })} />{" "}
                              {shown(c.contact[f])}
                            </label>
                          </td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
