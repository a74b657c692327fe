// The record pages of contacts, companies, deals and tasks: which fields each edits, and
// what each adds to its timeline.
import { useCallback } from "react";
import { api, DEAL_STAGES, LIFECYCLE_STAGES, type Contact, type DealStageChange, type Interaction, type Page } from "../api";
import { useI18n, type Key } from "../i18n";
import { CompanyBilling, DealBilling } from "../DealBilling";
import { Duplicates } from "../Duplicates";
import { RecordPage, type FieldSpec, type Rec } from "../RecordPage";
import type { Entry } from "../Timeline";

const PRIORITIES = ["low", "medium", "high", "urgent"];
const STATUSES = ["open", "in_progress", "done", "cancelled"];

export function ContactPage() {
  const { t } = useI18n();
  const fields: FieldSpec[] = [
    { name: "name", label: t("name"), required: true },
    { name: "email", label: t("email"), type: "email" },
    { name: "phoneNumber", label: t("phone"), type: "tel" },
    { name: "jobTitle", label: t("jobTitle") },
    { name: "companyId", label: t("company"), type: "company" },
    { name: "leadSource", label: t("leadSource") },
    {
      name: "lifecycleStage",
      label: t("stage"),
      type: "select",
      choices: LIFECYCLE_STAGES.map((s) => ({ value: s, label: t(`lifecycle.${s}` as Key) })),
    },
    { name: "ownerId", label: t("owner"), type: "user" },
    { name: "customFields", label: t("customFields"), type: "custom" },
  ];
  // Calls, emails and meetings with the contact.
  const history = useCallback(
    (id: string) =>
      api<Page<Interaction>>("GET", `/api/interactions?limit=50&sort=-occurredAt&filter=contactId[eq]:${id}`).then((p) =>
        p.data.map((i): Entry => ({ id: i.id, at: i.occurredAt, title: i.subject ? `${i.kind}: ${i.subject}` : i.kind, by: i.ownerId })),
      ),
    [],
  );
  return (
    <RecordPage
      path="/api/contacts"
      list="/contacts"
      fields={fields}
      newTitle={t("newContact")}
      deletedText="deleted"
      conflictText="conflict"
      history={history}
      attachments
      aside={(r, adopt) => (r.deletedAt ? null : <Duplicates id={r.id} current={r as Partial<Contact>} onChange={(c) => adopt(c as unknown as Rec)} />)}
    />
  );
}

export function CompanyPage() {
  const { t } = useI18n();
  return (
    <RecordPage
      path="/api/companies"
      attachments
      list="/companies"
      newTitle={t("newCompany")}
      aside={(r) => (r.deletedAt ? null : <CompanyBilling companyId={r.id} />)}
      fields={[
        { name: "name", label: t("name"), required: true },
        { name: "domain", label: t("domain") },
        { name: "industry", label: t("industry") },
        { name: "size", label: t("size"), type: "number" },
        { name: "country", label: t("country") },
        { name: "ownerId", label: t("owner"), type: "user" },
        { name: "customFields", label: t("customFields"), type: "custom" },
      ]}
    />
  );
}

export function DealPage() {
  const { t } = useI18n();
  const stage = (s: string | null | undefined) => (s ? t(`stage.${s}` as Key) : "—");
  // The stage changes, each with whoever moved it.
  const history = useCallback(
    (id: string) =>
      api<{ data: DealStageChange[] }>("GET", `/api/deals/${id}/history`).then((p) =>
        p.data.map(
          (c): Entry => ({ id: c.id, at: c.changedAt, title: `${stage(c.fromStage)} → ${stage(c.toStage)}`, by: c.changedBy }),
        ),
      ),
    // `stage` follows the language, as `t` does.
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [t],
  );
  return (
    <RecordPage
      path="/api/deals"
      attachments
      list="/deals"
      newTitle={t("newDeal")}
      history={history}
      aside={(r) => (r.deletedAt ? null : <DealBilling dealId={r.id} stage={String(r.stage ?? "")} />)}
      fields={[
        { name: "name", label: t("name"), required: true },
        { name: "stage", label: t("stage"), type: "select", choices: DEAL_STAGES.map((s) => ({ value: s, label: stage(s) })) },
        { name: "companyId", label: t("company"), type: "company" },
        { name: "contactIds", label: t("dealContacts"), type: "contacts" },
        { name: "amount", label: t("amount"), type: "money", currencyField: "currency" },
        { name: "currency", label: t("currency") },
        { name: "probability", label: t("probability"), type: "number" },
        { name: "expectedCloseDate", label: t("expectedClose"), type: "date" },
        { name: "ownerId", label: t("owner"), type: "user" },
        { name: "description", label: t("description"), type: "textarea" },
        { name: "notes", label: t("notes"), type: "textarea" },
        { name: "lostReason", label: t("lostReason") },
        { name: "products", label: t("lineItems"), type: "lines", currencyField: "currency" },
      ]}
    />
  );
}

export function TaskPage() {
  const { t } = useI18n();
  return (
    <RecordPage
      path="/api/tasks"
      attachments
      list="/tasks"
      newTitle={t("newTask")}
      fields={[
        { name: "name", label: t("name"), required: true },
        { name: "status", label: t("status"), type: "select", choices: STATUSES.map((s) => ({ value: s, label: t(`status.${s}` as Key) })) },
        { name: "priority", label: t("priority"), type: "select", choices: PRIORITIES.map((p) => ({ value: p, label: t(`priority.${p}` as Key) })) },
        { name: "dueDate", label: t("due"), type: "date" },
        { name: "assignedUser", label: t("assignee"), type: "user" },
        { name: "related", label: t("relatedTo"), type: "related" },
        { name: "description", label: t("description"), type: "textarea" },
      ]}
    />
  );
}
