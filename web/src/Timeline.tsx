// A record's timeline, newest first: the audit log's events about it (as far as the
// caller may read the log: admins all, others their own) and what the kind adds (a
// deal's stage changes, a contact's calls and emails).
import { useEffect, useState } from "react";
import { api, type AuditEvent, type User } from "./api";
import { isKey, useI18n } from "./i18n";
import { nameOf } from "./users";

export interface Entry {
  id: string;
  /** RFC 3339. */
  at: string;
  title: string;
  detail?: string;
  /** Who did it (a user id). */
  by?: string | null;
}

/** The changed fields an audit event names (`{field: {before, after}}`). */
export function changedFields(changes: unknown): string[] {
  if (!changes || typeof changes !== "object" || Array.isArray(changes)) return [];
  return Object.entries(changes as Record<string, unknown>)
    .filter(([, v]) => !!v && typeof v === "object" && ("before" in (v as object) || "after" in (v as object)))
    .map(([k]) => k);
}

export function Timeline({
  id,
  users,
  history,
  reload = 0,
}: {
  id: string;
  users: User[];
  history?: (id: string) => Promise<Entry[]>;
  reload?: number;
}) {
  const { t, lang } = useI18n();
  const [entries, setEntries] = useState<Entry[] | null>(null);
  useEffect(() => {
    let live = true;
    const audit = api<{ data: AuditEvent[] }>("GET", `/api/audit?entity=${id}&limit=50`).then(
      (p) =>
        p.data.map((e): Entry => {
          const verb = e.action.split(".").pop() ?? e.action;
          const fields = changedFields(e.changes);
          const key = `act.${verb}`;
          return {
            id: e.id,
            at: e.at,
            title: isKey(key) ? t(key) : verb,
            detail: verb === "updated" && fields.length > 0 ? t("changedFields", { fields: fields.join(", ") }) : undefined,
            by: e.actorId,
          };
        }),
      // A log the caller may not read leaves only the kind's own history.
      () => [] as Entry[],
    );
    const more = history ? history(id).catch(() => [] as Entry[]) : Promise.resolve([] as Entry[]);
    void Promise.all([audit, more]).then(([a, b]) => {
      if (live) setEntries([...a, ...b].sort((x, y) => y.at.localeCompare(x.at)));
    });
    return () => {
      live = false;
    };
  }, [id, history, reload, t]);
  const when = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  return (
    <section className="timeline" aria-labelledby={`timeline-${id}`}>
      <h2 id={`timeline-${id}`}>{t("timeline")}</h2>
      {!entries && <p role="status">{t("loading")}</p>}
      {entries && entries.length === 0 && <p>{t("noHistory")}</p>}
      {entries && entries.length > 0 && (
        <ol>
          {entries.map((e) => (
            <li key={e.id}>
              <p className="note-title">{e.title}</p>
              {e.detail && <p>{e.detail}</p>}
              <p className="note-meta">
                <time dateTime={e.at}>{when.format(new Date(e.at))}</time>
                {e.by && <span>{t("byWhom", { who: nameOf(users, e.by) })}</span>}
              </p>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
