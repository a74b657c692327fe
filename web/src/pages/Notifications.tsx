// Your in-app notifications: newest first, unread ones marked, read one or all.
import { useCallback, useEffect, useState } from "react";
import { Link } from "react-router-dom";
import { api, type Notification, type Page } from "../api";
import { useI18n } from "../i18n";
import { FormError } from "../ui";

export function Notifications({ onChange }: { onChange: () => void }) {
  const { t, lang } = useI18n();
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [page, setPage] = useState<Page<Notification> | null>(null);
  const [error, setError] = useState<unknown>(null);
  const load = useCallback(() => {
    const q = new URLSearchParams({ limit: "50" });
    if (unreadOnly) q.set("unread", "true");
    api<Page<Notification>>("GET", `/api/notifications?${q}`).then(setPage, setError);
  }, [unreadOnly]);
  useEffect(load, [load]);
  const act = (path: string) =>
    api("POST", path).then(() => {
      load();
      onChange();
    }, setError);
  const when = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  return (
    <section aria-labelledby="notes-title">
      <h1 id="notes-title">{t("notifications")}</h1>
      <div className="toolbar">
        <label>
          <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly(e.target.checked)} /> {t("unreadOnly")}
        </label>
        <button type="button" onClick={() => void act("/api/notifications/read-all")}>
          {t("markAllRead")}
        </button>
      </div>
      <FormError error={error} />
      {!page && !error && <p role="status">{t("loading")}</p>}
      {page && page.data.length === 0 && <p>{t("noNotifications")}</p>}
      <ul className="notes">
        {page?.data.map((n) => (
          <li key={n.id} className={n.readAt ? "read" : "unread"}>
            <p className="note-title">{n.title}</p>
            <p>{n.body}</p>
            <p className="note-meta">
              <time dateTime={n.createdAt}>{when.format(new Date(n.createdAt))}</time>
              {n.link && <Link to={n.link}>{t("open")}</Link>}
              {!n.readAt && (
                <button type="button" className="link" onClick={() => void act(`/api/notifications/${n.id}/read`)}>
                  {t("markRead")}
                </button>
              )}
            </p>
          </li>
        ))}
      </ul>
    </section>
  );
}
