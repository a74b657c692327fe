// The contacts list: newest first, a page at a time, searched; a name opens its page.
import { Link } from "react-router-dom";
import type { Contact } from "../api";
import { useI18n } from "../i18n";
import { RecordList } from "../RecordList";

export function Contacts() {
  const { t, lang } = useI18n();
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium" });
  return (
    <RecordList<Contact>
      title={t("contacts")}
      path="/api/contacts"
      empty={t("noContacts")}
      toolbar={
        <Link className="button" to="/contacts/new">
          {t("newContact")}
        </Link>
      }
      columns={[
        { label: t("name"), cell: (c) => <Link to={`/contacts/${c.id}`}>{c.name}</Link> },
        { label: t("email"), cell: (c) => c.email ?? "" },
        { label: t("phone"), cell: (c) => c.phoneNumber ?? "" },
        { label: t("stage"), cell: (c) => c.lifecycleStage ?? "" },
        { label: t("updated"), cell: (c) => date.format(new Date(c.updatedAt)) },
      ]}
    />
  );
}
