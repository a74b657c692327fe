// The companies, deals and tasks lists: searched, filtered, sorted by a header, and
// handled in bulk like the contacts.
import { useState } from "react";
import { Link } from "react-router-dom";
import { api, DEAL_STAGES, money, type Company, type Deal, type Task } from "../api";
import { useAuth } from "../auth";
import { useI18n, type Key } from "../i18n";
import { RecordList } from "../RecordList";
import { nameOf, useUsers } from "../users";

const PRIORITIES = ["low", "medium", "high", "urgent"];
const STATUSES = ["open", "in_progress", "done", "cancelled"];

function useDates() {
  const { lang } = useI18n();
  const d = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  return (v?: string | null) => (v ? d.format(new Date(v)) : "");
}

export function Companies() {
  const { t } = useI18n();
  const users = useUsers();
  const date = useDates();
  return (
    <RecordList<Company>
      title={t("companies")}
      path="/api/companies"
      bulk
      exportable
      assign={{ field: "ownerId" }}
      nameOf={(c) => c.name}
      toolbar={
        <Link className="button" to="/companies/new">
          {t("newCompany")}
        </Link>
      }
      filterFields={[
        { field: "name", label: t("name"), type: "text" },
        { field: "domain", label: t("domain"), type: "text" },
        { field: "industry", label: t("industry"), type: "text" },
        { field: "country", label: t("country"), type: "text" },
        { field: "size", label: t("size"), type: "number" },
        { field: "ownerId", label: t("owner"), type: "user" },
      ]}
      columns={[
        { key: "name", label: t("name"), sort: "name", text: (c) => c.name, cell: (c) => <Link to={`/companies/${c.id}`}>{c.name}</Link> },
        { key: "domain", label: t("domain"), sort: "domain", cell: (c) => c.domain ?? "" },
        { key: "industry", label: t("industry"), sort: "industry", cell: (c) => c.industry ?? "" },
        { key: "size", label: t("size"), sort: "size", numeric: true, hidden: true, cell: (c) => (c.size != null ? String(c.size) : "") },
        { key: "country", label: t("country"), sort: "country", cell: (c) => c.country ?? "" },
        { key: "owner", label: t("owner"), cell: (c) => nameOf(users, c.ownerId) },
        { key: "updated", label: t("updated"), sort: "updatedAt", cell: (c) => date(c.updatedAt) },
      ]}
    />
  );
}

export function Deals() {
  const { t, lang } = useI18n();
  const users = useUsers();
  const date = useDates();
  return (
    <RecordList<Deal>
      title={t("deals")}
      path="/api/deals"
      bulk
      exportable
      assign={{ field: "ownerId" }}
      nameOf={(d) => d.name}
      toolbar={
        <Link className="button" to="/deals/new">
          {t("newDeal")}
        </Link>
      }
      filterFields={[
        { field: "name", label: t("name"), type: "text" },
        { field: "stage", label: t("stage"), type: "choice", choices: DEAL_STAGES.map((s) => ({ value: s, label: t(`stage.${s}` as Key) })) },
        { field: "amount", label: t("amount"), type: "number" },
        { field: "currency", label: t("currency"), type: "text" },
        { field: "expectedCloseDate", label: t("expectedClose"), type: "date" },
        { field: "ownerId", label: t("owner"), type: "user" },
      ]}
      columns={[
        { key: "name", label: t("name"), sort: "name", text: (d) => d.name, cell: (d) => <Link to={`/deals/${d.id}`}>{d.name}</Link> },
        { key: "stage", label: t("stage"), sort: "stage", cell: (d) => t(`stage.${d.stage}` as Key) },
        {
          key: "amount",
          label: t("amount"),
          sort: "amount",
          numeric: true,
          cell: (d) => (d.amount != null ? money(d.amount, d.currency, lang) : ""),
        },
        { key: "probability", label: t("probability"), sort: "probability", numeric: true, hidden: true, cell: (d) => String(d.probability) },
        { key: "expectedClose", label: t("expectedClose"), sort: "expectedCloseDate", cell: (d) => date(d.expectedCloseDate) },
        { key: "owner", label: t("owner"), cell: (d) => nameOf(users, d.ownerId) },
        { key: "updated", label: t("updated"), sort: "updatedAt", cell: (d) => date(d.updatedAt) },
      ]}
    />
  );
}

export function Tasks() {
  const { t } = useI18n();
  const { user } = useAuth();
  const users = useUsers();
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
      bulk
      exportable
      assign={{ field: "assignedUser" }}
      nameOf={(x) => x.name}
      toolbar={
        <>
          <Link className="button" to="/tasks/new">
            {t("newTask")}
          </Link>
          <label>
            <input type="checkbox" checked={mine} onChange={(e) => setMine(e.target.checked)} /> {t("mineOnly")}
          </label>
        </>
      }
      filterFields={[
        { field: "name", label: t("name"), type: "text" },
        { field: "status", label: t("status"), type: "choice", choices: STATUSES.map((s) => ({ value: s, label: t(`status.${s}` as Key) })) },
        { field: "priority", label: t("priority"), type: "choice", choices: PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}` as Key) })) },
        { field: "dueDate", label: t("due"), type: "date" },
        { field: "assignedUser", label: t("assignee"), type: "user" },
      ]}
      columns={[
        { key: "name", label: t("name"), sort: "name", text: (x) => x.name, cell: (x) => <Link to={`/tasks/${x.id}`}>{x.name}</Link> },
        { key: "status", label: t("status"), sort: "status", cell: (x) => t(`status.${x.status}` as Key) },
        { key: "priority", label: t("priority"), sort: "priority", cell: (x) => t(`priority.${x.priority}` as Key) },
        { key: "due", label: t("due"), sort: "dueDate", cell: (x) => date(x.dueDate) },
        { key: "assignee", label: t("assignee"), cell: (x) => nameOf(users, x.assignedUser) },
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
