// The contacts list: newest first, a page at a time, searched and filtered; a name opens
// its page; rows can be deleted, handed to another owner or exported together.
import { Link } from "react-router-dom";
import { LIFECYCLE_STAGES, type Contact } from "../api";
import { useI18n, type Key } from "../i18n";
import { RecordList } from "../RecordList";
import { nameOf, useUsers } from "../users";

export function Contacts() {
  const { t, lang } = useI18n();
  const users = useUsers();
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  const stage = (s?: string | null) => (s ? t(`lifecycle.${s}` as Key) : "");
  return (
    <RecordList<Contact>
      title={t("contacts")}
      path="/api/contacts"
      empty={t("noContacts")}
      bulk
      exportable
      assign={{ field: "ownerId" }}
      nameOf={(c) => c.name}
      toolbar={
        <Link className="button" to="/contacts/new">
          {t("newContact")}
        </Link>
      }
      filterFields={[
        { field: "name", label: t("name"), type: "text" },
        { field: "email", label: t("email"), type: "text" },
        { field: "jobTitle", label: t("jobTitle"), type: "text" },
        { field: "leadSource", label: t("leadSource"), type: "text" },
        { field: "lifecycleStage", label: t("stage"), type: "choice", choices: LIFECYCLE_STAGES.map((s) => ({ value: s, label: stage(s) })) },
        { field: "ownerId", label: t("owner"), type: "user" },
        { field: "createdAt", label: t("created"), type: "date" },
      ]}
      columns={[
        { key: "name", label: t("name"), sort: "name", text: (c) => c.name, cell: (c) => <Link to={`/contacts/${c.id}`}>{c.name}</Link> },
        { key: "email", label: t("email"), sort: "email", cell: (c) => c.email ?? "" },
        { key: "phone", label: t("phone"), sort: "phoneNumber", cell: (c) => c.phoneNumber ?? "" },
        { key: "jobTitle", label: t("jobTitle"), sort: "jobTitle", hidden: true, cell: (c) => c.jobTitle ?? "" },
        { key: "leadSource", label: t("leadSource"), sort: "leadSource", hidden: true, cell: (c) => c.leadSource ?? "" },
        { key: "stage", label: t("stage"), sort: "lifecycleStage", cell: (c) => stage(c.lifecycleStage) },
        { key: "owner", label: t("owner"), cell: (c) => nameOf(users, c.ownerId) },
        { key: "updated", label: t("updated"), sort: "updatedAt", cell: (c) => date.format(new Date(c.updatedAt)) },
      ]}
    />
  );
}
