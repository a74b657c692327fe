// Saved reports and dashboards: the caller's own and those shared with them; a custom
// report opens in the report builder, a dashboard on the dashboard.
import { Link } from "react-router-dom";
import type { SavedReport } from "../api";
import { useI18n } from "../i18n";
import { RecordList } from "../RecordList";
import { nameOf, useUsers } from "../users";

export function Reports() {
  const { t, lang } = useI18n();
  const users = useUsers();
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  return (
    <RecordList<SavedReport>
      title={t("reports")}
      path="/api/reports/saved"
      empty={t("noReports")}
      nameOf={(r) => r.name}
      toolbar={
        <Link className="button" to="/reports/new">
          {t("newReport")}
        </Link>
      }
      filterFields={[{ field: "name", label: t("name"), type: "text" }]}
      columns={[
        {
          key: "name",
          label: t("name"),
          sort: "name",
          text: (r) => r.name,
          cell: (r) =>
            r.cards ? (
              <Link to={`/dashboard?board=${r.id}`}>{r.name}</Link>
            ) : r.spec ? (
              <Link to={`/reports/${r.id}`}>{r.name}</Link>
            ) : (
              <span title={t("standardOnDashboard")}>{r.name}</span>
            ),
        },
        { key: "kind", label: t("kind"), cell: (r) => (r.cards ? t("kind.dashboard") : r.spec ? t("kind.custom") : t("kind.standard")) },
        { key: "owner", label: t("owner"), cell: (r) => nameOf(users, r.ownerId) },
        { key: "updated", label: t("updated"), sort: "updatedAt", cell: (r) => date.format(new Date(r.updatedAt)) },
      ]}
    />
  );
}
