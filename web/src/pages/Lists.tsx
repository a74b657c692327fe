// The companies, deals and tasks lists.
import { useState } from "react";
import { api, money, type Company, type Deal, type Task } from "../api";
import { useAuth } from "../auth";
import { useI18n, type Key } from "../i18n";
import { RecordList } from "../RecordList";

function useDates() {
  const { lang } = useI18n();
  const d = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  return (v?: string | null) => (v ? d.format(new Date(v)) : "");
}

export function Companies() {
  const { t } = useI18n();
  const date = useDates();
  return (
    <RecordList<Company>
      title={t("companies")}
      path="/api/companies"
      columns={[
        { label: t("name"), cell: (c) => c.name },
        { label: t("domain"), cell: (c) => c.domain ?? "" },
        { label: t("industry"), cell: (c) => c.industry ?? "" },
        { label: t("country"), cell: (c) => c.country ?? "" },
        { label: t("updated"), cell: (c) => date(c.updatedAt) },
      ]}
    />
  );
}

export function Deals() {
  const { t, lang } = useI18n();
  const date = useDates();
  return (
    <RecordList<Deal>
      title={t("deals")}
      path="/api/deals"
      columns={[
        { label: t("name"), cell: (d) => d.name },
        { label: t("stage"), cell: (d) => t(`stage.${d.stage}` as Key) },
        { label: t("amount"), numeric: true, cell: (d) => (d.amount != null ? money(d.amount, d.currency, lang) : "") },
        { label: t("expectedClose"), cell: (d) => date(d.expectedCloseDate) },
        { label: t("updated"), cell: (d) => date(d.updatedAt) },
      ]}
    />
  );
}

export function Tasks() {
  const { t } = useI18n();
  const { user } = useAuth();
  const date = useDates();
  const [mine, setMine] = useState(true);
  const [reload, setReload] = useState(0);
  const done = (id: string) => api("POST", `/api/tasks/${id}/complete`).then(() => setReload((n) => n + 1));
  return (
    <RecordList<Task>
      title={t("tasks")}
      path="/api/tasks"
      sort="dueDate"
      filter={mine && user ? `assignedUser[eq]:${user.id}` : undefined}
      reload={reload}
      toolbar={
        <label>
          <input type="checkbox" checked={mine} onChange={(e) => setMine(e.target.checked)} /> {t("mineOnly")}
        </label>
      }
      columns={[
        { label: t("name"), cell: (x) => x.name },
        { label: t("status"), cell: (x) => t(`status.${x.status}` as Key) },
        { label: t("priority"), cell: (x) => x.priority },
        { label: t("due"), cell: (x) => date(x.dueDate) },
        {
          label: "",
          cell: (x) =>
            x.status === "done" || x.status === "cancelled" ? null : (
              <button type="button" className="link" aria-label={`${t("markDone")}: ${x.name}`} onClick={() => void done(x.id)}>
                {t("markDone")}
              </button>
            ),
        },
      ]}
    />
  );
}
