// Billing: invoices and quotes (drafted with their lines, issued or sent, then paid,
// emailed, credited or voided; each as a PDF), and the product catalogue. Managers and
// admins change them; users read the documents of their own deals and companies.
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams, useSearchParams } from "react-router-dom";
import { api, apiFile, minorPerMajor, money, saveFile } from "../api";
import { Area as AreaPage, Table, useList, useMayEdit } from "../areas";
import { useI18n, type Key } from "../i18n";
import { itemsOf, LineItems, linesOf, type LineDraft } from "../LineItems";
import type { components } from "../openapi";
import { RecordPicker } from "../Pickers";
import { CopyLink, Field, fieldError, FormError, SelectField, useAction } from "../ui";

type Schemas = components["schemas"];
type Invoice = Schemas["InvoiceView"];
type Quote = Schemas["QuoteView"];
type Payment = Schemas["Payment"];
type Product = Schemas["Product"];
type Subscription = Schemas["Subscription"];
type Settings = Schemas["BillingSettings"];
type Doc = Invoice | Quote;
type Kind = "invoices" | "quotes";

const INVOICE_STATUSES = ["draft", "issued", "sent", "partially_paid", "paid", "credited", "void"];
const QUOTE_STATUSES = ["draft", "sent", "accepted", "declined", "converted"];
const TERMS = ["due_on_receipt", "net_7", "net_10", "net_15", "net_30", "net_45", "net_60", "net_90", "end_of_month", "end_of_next_month"];
const FREQUENCIES = ["weekly", "monthly", "quarterly", "semiannual", "yearly"];
const METHODS = ["bank_transfer", "card", "sepa_debit", "ach_debit", "wallet", "cash", "check", "other"];

function useDay() {
  const { lang } = useI18n();
  const f = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeZone: "UTC" });
  return (v?: string | null) => (v ? f.format(new Date(v.length === 10 ? `${v}T00:00:00Z` : v)) : "—");
}

/** The billing area's page, with its tabs. */
function Area({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  const { t } = useI18n();
  const tabs: [string, string][] = [
    ["/billing/invoices", t("invoices")],
    ["/billing/quotes", t("quotes")],
    ["/billing/subscriptions", t("subscriptions")],
    ["/billing/products", t("products")],
    ["/billing/settings", t("billingSettings")],
  ];
  return (
    <AreaPage label={t("billing")} tabs={tabs} title={title} actions={actions}>
      {children}
    </AreaPage>
  );
}

/** A document's status, with "overdue" and "expired" as the server computes them. */
function Status({ doc }: { doc: Doc }) {
  const { t } = useI18n();
  const late = "overdue" in doc && doc.overdue;
  const expired = "expired" in doc && doc.expired;
  return (
    <span className={`state state-${doc.status}${late || expired ? " state-late" : ""}`}>
      {t(`docStatus.${doc.status}` as Key)}
      {late && ` · ${t("overdueDays", { n: String("daysOverdue" in doc ? doc.daysOverdue : 0) })}`}
      {expired && ` · ${t("expired")}`}
    </span>
  );
}

function DocumentList({ kind }: { kind: Kind }) {
  const { t, lang } = useI18n();
  const day = useDay();
  const mayEdit = useMayEdit();
  const [status, setStatus] = useState("");
  const q = new URLSearchParams({ limit: "200" });
  if (status === "overdue") q.set("overdue", "true");
  else if (status) q.set("status", status);
  const { rows, error } = useList<Doc>(`/api/${kind}?${q}`);
  const statuses = kind === "invoices" ? [...INVOICE_STATUSES, "overdue"] : QUOTE_STATUSES;
  return (
    <Area
      title={t(kind)}
      actions={
        mayEdit && (
          <Link className="button" to={`/billing/${kind}/new`}>
            {t(kind === "invoices" ? "newInvoice" : "newQuote")}
          </Link>
        )
      }
    >
      <SelectField
        label={t("status")}
        value={status}
        onChange={setStatus}
        blank
        options={statuses.map((s) => ({ value: s, label: s === "overdue" ? t("overdue") : t(`docStatus.${s}` as Key) }))}
      />
      <FormError error={error} />
      {!rows && !error && <p role="status">{t("loading")}</p>}
      <Table
        rows={rows}
        empty={t("nothing")}
        columns={[
          { label: t("number"), cell: (d) => <Link to={`/billing/${kind}/${d.id}`}>{d.number ?? t("draftNumber")}</Link> },
          { label: t("customer"), cell: (d) => d.customer?.name ?? "—" },
          { label: t("status"), cell: (d) => <Status doc={d} /> },
          { label: t("issueDate"), cell: (d) => day(d.issueDate) },
          { label: kind === "invoices" ? t("dueDate") : t("validUntil"), cell: (d) => day("dueDate" in d ? d.dueDate : "validUntil" in d ? d.validUntil : null) },
          { label: t("total"), numeric: true, cell: (d) => money(d.total, d.currency, lang) },
          kind === "invoices" && { label: t("balance"), numeric: true, cell: (d) => ("balance" in d ? money(d.balance, d.currency, lang) : "") },
        ]}
      />
    </Area>
  );
}

export function InvoiceList() {
  return <DocumentList kind="invoices" />;
}

export function QuoteList() {
  return <DocumentList kind="quotes" />;
}

interface DocDraft {
  companyId: string;
  contactId: string;
  dealId: string;
  currency: string;
  lines: LineDraft[];
  notes: string;
  paymentTerms: string;
  dueDate: string;
  validUntil: string;
}

function draftOf(d: Doc | null, prefill: URLSearchParams): DocDraft {
  const currency = d?.currency ?? "EUR";
  return {
    companyId: d?.companyId ?? prefill.get("companyId") ?? "",
    contactId: d?.contactId ?? prefill.get("contactId") ?? "",
    dealId: d?.dealId ?? prefill.get("dealId") ?? "",
    currency,
    lines: linesOf(d?.lines ?? [], minorPerMajor(currency)),
    notes: d?.notes ?? "",
    paymentTerms: d && "paymentTerms" in d ? (d.paymentTerms ?? "") : "",
    dueDate: d && "dueDate" in d ? (d.dueDate ?? "") : "",
    validUntil: d && "validUntil" in d ? (d.validUntil ?? "") : "",
  };
}

/** The lines and totals of a document as issued. */
/** One row of a document's totals: its label across the line columns, the amount under the line totals. */
function TotalRow({ label, amount, grand }: { label: string; amount: string; grand?: boolean }) {
  return (
    <tr className={grand ? "grand" : undefined}>
      <th scope="row" colSpan={5}>
        {label}
      </th>
      <td className="num">{amount}</td>
    </tr>
  );
}

function Lines({ doc }: { doc: Doc }) {
  const { t, lang } = useI18n();
  const m = (v: number) => money(v, doc.currency, lang);
  const pct = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  const inv = "balance" in doc ? doc : null;
  return (
    <table className="doc-lines">
      <thead>
        <tr>
          <th scope="col">{t("name")}</th>
          <th scope="col" className="num">
            {t("quantity")}
          </th>
          <th scope="col" className="num">
            {t("unitPrice")}
          </th>
          <th scope="col" className="num">
            {t("discountPercent")}
          </th>
          <th scope="col" className="num">
            {t("taxPercent")}
          </th>
          <th scope="col" className="num">
            {t("lineTotal")}
          </th>
        </tr>
      </thead>
      <tbody>
        {doc.lines.map((l, i) => (
          <tr key={i}>
            <td>{l.name}</td>
            <td className="num">{l.quantity}</td>
            <td className="num">{m(l.unitPrice)}</td>
            <td className="num">{Number(l.discountPercent) ? pct.format(Number(l.discountPercent)) : ""}</td>
            <td className="num">{pct.format(Number(l.taxPercent))}</td>
            <td className="num">{m(l.total)}</td>
          </tr>
        ))}
      </tbody>
      <tfoot>
        <TotalRow label={t("subtotal")} amount={m(doc.subtotal)} />
        {doc.discountTotal !== 0 && <TotalRow label={t("discounts")} amount={`−${m(doc.discountTotal)}`} />}
        {doc.taxes.map((x) => (
          <TotalRow key={String(x.rate)} label={t("taxAt", { rate: pct.format(Number(x.rate)), base: m(x.net) })} amount={m(x.tax)} />
        ))}
        <TotalRow grand label={t("grandTotal")} amount={m(doc.total)} />
        {inv && inv.status !== "draft" && (
          <>
            <TotalRow label={t("paid")} amount={m(inv.amountPaid)} />
            {inv.amountCredited !== 0 && <TotalRow label={t("credited")} amount={m(inv.amountCredited)} />}
            <TotalRow grand label={t("balanceDue")} amount={m(inv.balance)} />
          </>
        )}
      </tfoot>
    </table>
  );
}

/** An invoice's payments, each refundable while something of it is left. */
function Payments({ invoice, reload, onChange }: { invoice: Invoice; reload: number; onChange: () => void }) {
  const { t, lang } = useI18n();
  const day = useDay();
  const mayEdit = useMayEdit();
  const [rows, setRows] = useState<Payment[]>([]);
  const { error, busy, run } = useAction();
  useEffect(() => {
    api<{ data: Payment[] }>("GET", `/api/invoices/${invoice.id}/payments`).then((p) => setRows(p.data), () => setRows([]));
  }, [invoice.id, reload]);
  if (rows.length === 0) return null;
  return (
    <section aria-labelledby="payments-title">
      <h2 id="payments-title">{t("payments")}</h2>
      <FormError error={error} />
      <Table
        rows={rows}
        empty=""
        columns={[
          { label: t("receivedAt"), cell: (p) => day(p.receivedAt) },
          { label: t("method"), cell: (p) => (p.kind === "refund" ? t("refund") : t(`method.${p.method}` as Key)) },
          { label: t("reference"), cell: (p) => p.reference ?? "" },
          { label: t("amount"), numeric: true, cell: (p) => money(p.kind === "refund" ? -p.amount : p.amount, p.currency, lang) },
          mayEdit && {
            label: t("actions"),
            hiddenLabel: true,
            cell: (p) =>
              p.kind !== "refund" &&
              p.refunded < p.amount && (
                <button
                  type="button"
                  className="link"
                  disabled={busy}
                  onClick={() =>
                    void run(async () => {
                      await api("POST", `/api/payments/${p.id}/refund`, {});
                      onChange();
                    })
                  }
                >
                  {t("refundIt")}
                </button>
              ),
          },
        ]}
      />
    </section>
  );
}

function DocumentPage({ kind }: { kind: Kind }) {
  const { id } = useParams();
  const [params] = useSearchParams();
  const isNew = id === "new";
  const { t, lang } = useI18n();
  const day = useDay();
  const navigate = useNavigate();
  const mayEdit = useMayEdit();
  const [doc, setDoc] = useState<Doc | null>(null);
  const [draft, setDraft] = useState<DocDraft>(() => draftOf(null, params));
  const [notice, setNotice] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [payment, setPayment] = useState({ amount: "", method: "bank_transfer", reference: "" });
  const [mail, setMail] = useState({ to: "", message: "" });
  // The customer's pay page, once asked for (an issued invoice with something left to pay).
  const [payUrl, setPayUrl] = useState<string | null>(null);
  useEffect(() => setPayUrl(null), [id]);
  const { error, setError, busy, run } = useAction();
  const adopt = useCallback(
    (d: Doc) => {
      setDoc(d);
      setDraft(draftOf(d, params));
    },
    [params],
  );
  useEffect(() => {
    if (isNew || !id) return;
    api<Doc>("GET", `/api/${kind}/${id}`).then(adopt, setError);
  }, [id, isNew, kind, adopt, setError, reload]);
  const per = minorPerMajor(/^[A-Z]{3}$/.test(draft.currency) ? draft.currency : "EUR");
  const save = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void run(async () => {
      const body: Record<string, unknown> = {
        companyId: draft.companyId || null,
        contactId: draft.contactId || null,
        dealId: draft.dealId || null,
        currency: draft.currency.trim().toUpperCase() || null,
        lines: itemsOf(draft.lines, per),
        notes: draft.notes.trim() || null,
      };
      if (kind === "invoices") {
        body.paymentTerms = draft.paymentTerms || null;
        body.dueDate = draft.dueDate || null;
      } else body.validUntil = draft.validUntil || null;
      if (isNew) {
        const made = await api<Doc>("POST", `/api/${kind}`, body);
        navigate(`/billing/${kind}/${made.id}`, { replace: true });
        return;
      }
      adopt(await api<Doc>("PATCH", `/api/${kind}/${id}`, { ...body, version: doc?.version }));
      setNotice(t("saved"));
    });
  };
  const act = (path: string, body: unknown, done: Key) =>
    void run(async () => {
      setNotice(null);
      adopt(await api<Doc>("POST", `/api/${kind}/${id}/${path}`, body));
      setNotice(t(done));
    });
  const pdf = () =>
    void run(async () => {
      const f = await apiFile("GET", `/api/${kind}/${id}/pdf?lang=${lang}`);
      saveFile(f.name, f.blob);
    });
  if (!isNew && !doc) return error ? <FormError error={error} /> : <p role="status">{t("loading")}</p>;
  const title = isNew ? t(kind === "invoices" ? "newInvoice" : "newQuote") : (doc?.number ?? t("draftNumber"));
  const editing = isNew || (doc?.status === "draft" && mayEdit);
  const inv = doc && "balance" in doc ? (doc as Invoice) : null;
  const quote = doc && !inv ? (doc as Quote) : null;
  const open = inv && ["issued", "sent", "partially_paid"].includes(inv.status);
  return (
    <Area title={title} actions={doc && <Status doc={doc} />}>
      <p>
        <Link to={`/billing/${kind}`}>{t("back")}</Link>
      </p>
      <FormError error={error} fields={["companyId", "contactId", "dealId", "currency", "lines", "notes", "paymentTerms", "dueDate", "validUntil", "amount", "method", "reference", "to", "message"]} />
      {notice && <p role="status">{notice}</p>}
      {editing ? (
        <form onSubmit={save} noValidate className="record wide">
          <RecordPicker label={t("company")} kind="companies" value={draft.companyId} onChange={(v) => setDraft((d) => ({ ...d, companyId: v }))} error={fieldError(error, "companyId")} />
          <RecordPicker label={t("contact")} kind="contacts" value={draft.contactId} onChange={(v) => setDraft((d) => ({ ...d, contactId: v }))} error={fieldError(error, "contactId")} />
          <RecordPicker label={t("deal")} kind="deals" value={draft.dealId} onChange={(v) => setDraft((d) => ({ ...d, dealId: v }))} error={fieldError(error, "dealId")} />
          <Field label={t("currency")} value={draft.currency} maxLength={3} onChange={(e) => setDraft({ ...draft, currency: e.target.value.toUpperCase() })} error={fieldError(error, "currency")} />
          <LineItems
            label={t("lineItems")}
            field="lines"
            lines={draft.lines}
            currency={draft.currency}
            onChange={(lines) => setDraft((d) => ({ ...d, lines }))}
            errorOf={(f) => fieldError(error, f)}
          />
          {kind === "invoices" ? (
            <>
              <SelectField
                label={t("paymentTerms")}
                value={draft.paymentTerms}
                blank
                onChange={(v) => setDraft({ ...draft, paymentTerms: v })}
                options={TERMS.map((x) => ({ value: x, label: t(`terms.${x}` as Key) }))}
                error={fieldError(error, "paymentTerms")}
              />
              <Field label={t("dueDate")} type="date" value={draft.dueDate} onChange={(e) => setDraft({ ...draft, dueDate: e.target.value })} error={fieldError(error, "dueDate")} />
            </>
          ) : (
            <Field label={t("validUntil")} type="date" value={draft.validUntil} onChange={(e) => setDraft({ ...draft, validUntil: e.target.value })} error={fieldError(error, "validUntil")} />
          )}
          <div className="field">
            <label htmlFor="doc-notes">{t("notes")}</label>
            <textarea id="doc-notes" rows={3} value={draft.notes} onChange={(e) => setDraft({ ...draft, notes: e.target.value })} />
          </div>
          <div className="toolbar">
            <button type="submit" disabled={busy}>
              {isNew ? t("createDraft") : t("save")}
            </button>
            {!isNew && kind === "invoices" && (
              <button type="button" className="secondary" disabled={busy} onClick={() => act("issue", {}, "issuedNotice")}>
                {t("issueInvoice")}
              </button>
            )}
            {!isNew && kind === "quotes" && (
              <button type="button" className="secondary" disabled={busy} onClick={() => act("send", {}, "quoteSentNotice")}>
                {t("sendQuote")}
              </button>
            )}
            {!isNew && (
              <button
                type="button"
                className="danger"
                disabled={busy}
                onClick={() =>
                  void run(async () => {
                    await api("DELETE", `/api/${kind}/${id}`, undefined, { "If-Match": `"${doc?.version}"` });
                    navigate(`/billing/${kind}`, { replace: true });
                  })
                }
              >
                {t("deleteIt")}
              </button>
            )}
          </div>
        </form>
      ) : (
        doc && (
          <div className="document">
            <dl className="facts">
              <dt>{t("customer")}</dt>
              <dd>{doc.customer?.name ?? "—"}</dd>
              <dt>{t("issueDate")}</dt>
              <dd>{day(doc.issueDate)}</dd>
              {inv && (
                <>
                  <dt>{t("dueDate")}</dt>
                  <dd>{day(inv.dueDate)}</dd>
                </>
              )}
              {quote && (
                <>
                  <dt>{t("validUntil")}</dt>
                  <dd>{day(quote.validUntil)}</dd>
                </>
              )}
            </dl>
            <Lines doc={doc} />
            {doc.notes && <p className="notes">{doc.notes}</p>}
          </div>
        )
      )}
      {doc && doc.status !== "draft" && (
        <div className="doc-actions">
          <button type="button" className="secondary" disabled={busy} onClick={pdf}>
            {t("downloadPdf")}
          </button>
          {mayEdit && quote?.status === "sent" && (
            <>
              <button type="button" disabled={busy} onClick={() => act("accept", {}, "quoteAccepted")}>
                {t("acceptQuote")}
              </button>
              <button type="button" className="secondary" disabled={busy} onClick={() => act("decline", {}, "quoteDeclined")}>
                {t("declineQuote")}
              </button>
            </>
          )}
          {mayEdit && quote?.status === "accepted" && (
            <button
              type="button"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  const made = await api<Invoice>("POST", `/api/quotes/${id}/invoice`);
                  navigate(`/billing/invoices/${made.id}`);
                })
              }
            >
              {t("invoiceQuote")}
            </button>
          )}
          {inv && inv.docType === "invoice" && open && inv.balance > 0 && !payUrl && (
            <button
              type="button"
              className="secondary"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  setPayUrl((await api<{ url: string }>("POST", `/api/invoices/${id}/pay-link`)).url);
                })
              }
            >
              {t("getPayLink")}
            </button>
          )}
          {mayEdit && inv?.status === "issued" && (
            <button type="button" className="secondary" disabled={busy} onClick={() => act("sent", {}, "markedSent")}>
              {t("markSent")}
            </button>
          )}
          {mayEdit && inv && open && inv.amountPaid === 0 && inv.amountCredited === 0 && (
            <button type="button" className="danger" disabled={busy} onClick={() => act("void", {}, "voidedNotice")}>
              {t("voidInvoice")}
            </button>
          )}
          {mayEdit && inv && inv.docType === "invoice" && open && inv.balance > 0 && (
            <button
              type="button"
              className="secondary"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  const note = await api<Invoice>("POST", `/api/invoices/${id}/credit-notes`, {});
                  navigate(`/billing/invoices/${note.id}`);
                })
              }
            >
              {t("creditInFull")}
            </button>
          )}
        </div>
      )}
      {payUrl && inv && open && inv.balance > 0 && <CopyLink label={t("payLink")} url={payUrl} hint={t("payLinkHint")} />}
      {mayEdit && inv && open && inv.balance > 0 && (
        <form
          className="inline-form"
          noValidate
          aria-label={t("recordPayment")}
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              const amount = Number(payment.amount);
              await api("POST", `/api/invoices/${id}/payments`, {
                amount: Number.isFinite(amount) ? Math.round(amount * minorPerMajor(inv.currency)) : payment.amount,
                method: payment.method,
                reference: payment.reference.trim() || null,
              });
              setPayment({ amount: "", method: "bank_transfer", reference: "" });
              setNotice(t("paymentRecorded"));
              setReload((n) => n + 1);
            });
          }}
        >
          <Field label={t("amount")} type="number" step="0.01" value={payment.amount} placeholder={String(inv.balance / minorPerMajor(inv.currency))} onChange={(e) => setPayment({ ...payment, amount: e.target.value })} error={fieldError(error, "amount")} />
          <SelectField
            label={t("method")}
            value={payment.method}
            onChange={(v) => setPayment({ ...payment, method: v })}
            options={METHODS.map((x) => ({ value: x, label: t(`method.${x}` as Key) }))}
          />
          <Field label={t("reference")} value={payment.reference} onChange={(e) => setPayment({ ...payment, reference: e.target.value })} error={fieldError(error, "reference")} />
          <button type="submit" disabled={busy || !payment.amount}>
            {t("recordPayment")}
          </button>
        </form>
      )}
      {mayEdit && doc && doc.status !== "draft" && doc.status !== "void" && (inv || quote?.status === "sent") && (
        <form
          className="inline-form"
          noValidate
          aria-label={t("emailIt")}
          onSubmit={(e) => {
            e.preventDefault();
            void run(async () => {
              adopt(await api<Doc>("POST", `/api/${kind}/${id}/email`, { ...(mail.to.trim() ? { to: mail.to.trim() } : {}), ...(mail.message.trim() ? { message: mail.message.trim() } : {}), lang }));
              setNotice(t("emailedNotice"));
            });
          }}
        >
          <Field label={t("emailTo")} type="email" value={mail.to} placeholder={doc.customer?.email ?? ""} onChange={(e) => setMail({ ...mail, to: e.target.value })} error={fieldError(error, "to")} />
          <Field label={t("message")} value={mail.message} onChange={(e) => setMail({ ...mail, message: e.target.value })} error={fieldError(error, "message")} />
          <button type="submit" disabled={busy}>
            {t("emailIt")}
          </button>
        </form>
      )}
      {inv && inv.status !== "draft" && <Payments invoice={inv} reload={reload} onChange={() => setReload((n) => n + 1)} />}
    </Area>
  );
}

export function InvoicePage() {
  return <DocumentPage kind="invoices" />;
}

export function QuotePage() {
  return <DocumentPage kind="quotes" />;
}

const BLANK_PRODUCT = { sku: "", name: "", unitPrice: "", currency: "EUR", taxPercent: "", unit: "", active: true };

export function Products() {
  const { t, lang } = useI18n();
  const mayEdit = useMayEdit();
  const [rows, setRows] = useState<Product[] | null>(null);
  const [editing, setEditing] = useState<Product | null>(null);
  const [draft, setDraft] = useState(BLANK_PRODUCT);
  const [reload, setReload] = useState(0);
  const { error, setError, busy, run } = useAction();
  useEffect(() => {
    api<{ data: Product[] }>("GET", "/api/products?includeInactive=true").then((p) => setRows(p.data), setError);
  }, [reload, setError]);
  const edit = (p: Product | null) => {
    setEditing(p);
    setDraft(
      p
        ? { sku: p.sku, name: p.name, unitPrice: String(p.unitPrice / minorPerMajor(p.currency)), currency: p.currency, taxPercent: String(p.taxPercent), unit: p.unit ?? "", active: p.active }
        : BLANK_PRODUCT,
    );
  };
  const save = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const price = Number(draft.unitPrice);
      const tax = Number(draft.taxPercent || "0");
      const body = {
        sku: draft.sku.trim(),
        name: draft.name.trim(),
        unitPrice: draft.unitPrice.trim() !== "" && Number.isFinite(price) ? Math.round(price * minorPerMajor(draft.currency)) : draft.unitPrice,
        currency: draft.currency.trim().toUpperCase(),
        taxPercent: Number.isFinite(tax) ? tax : draft.taxPercent,
        unit: draft.unit.trim() || null,
        active: draft.active,
      };
      if (editing) await api("PATCH", `/api/products/${editing.id}`, { ...body, version: editing.version });
      else await api("POST", "/api/products", body);
      edit(null);
      setReload((n) => n + 1);
    });
  };
  return (
    <Area title={t("products")}>
      {mayEdit && (
        <form onSubmit={save} noValidate className="inline-form" aria-label={editing ? t("editProduct", { name: editing.name }) : t("newProduct")}>
          <FormError error={error} fields={["sku", "name", "unitPrice", "currency", "taxPercent", "unit"]} />
          <Field label={t("sku")} value={draft.sku} onChange={(e) => setDraft({ ...draft, sku: e.target.value })} error={fieldError(error, "sku")} />
          <Field label={t("name")} value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} error={fieldError(error, "name")} />
          <Field label={t("unitPrice")} type="number" step="0.01" value={draft.unitPrice} onChange={(e) => setDraft({ ...draft, unitPrice: e.target.value })} error={fieldError(error, "unitPrice")} />
          <Field label={t("currency")} value={draft.currency} maxLength={3} onChange={(e) => setDraft({ ...draft, currency: e.target.value.toUpperCase() })} error={fieldError(error, "currency")} />
          <Field label={t("taxPercent")} type="number" step="0.01" value={draft.taxPercent} onChange={(e) => setDraft({ ...draft, taxPercent: e.target.value })} error={fieldError(error, "taxPercent")} />
          <Field label={t("unit")} value={draft.unit} onChange={(e) => setDraft({ ...draft, unit: e.target.value })} error={fieldError(error, "unit")} />
          <label className="check">
            <input type="checkbox" checked={draft.active} onChange={(e) => setDraft({ ...draft, active: e.target.checked })} /> {t("activeProduct")}
          </label>
          <button type="submit" disabled={busy}>
            {editing ? t("save") : t("addProduct")}
          </button>
          {editing && (
            <button type="button" className="link" onClick={() => edit(null)}>
              {t("cancel")}
            </button>
          )}
        </form>
      )}
      <Table
        rows={rows}
        empty={t("nothing")}
        columns={[
          {
            label: t("sku"),
            cell: (p) =>
              mayEdit ? (
                <button type="button" className="link" onClick={() => edit(p)} aria-label={`${p.sku}: ${t("editProduct", { name: p.name })}`}>
                  {p.sku}
                </button>
              ) : (
                p.sku
              ),
          },
          { label: t("name"), cell: (p) => p.name },
          { label: t("unitPrice"), numeric: true, cell: (p) => `${money(p.unitPrice, p.currency, lang)}${p.unit ? ` / ${p.unit}` : ""}` },
          { label: t("taxPercent"), numeric: true, cell: (p) => String(p.taxPercent) },
          { label: t("status"), cell: (p) => (p.active ? t("activeProduct") : t("inactiveProduct")) },
        ]}
      />
    </Area>
  );
}

export function SubscriptionList() {
  const { t, lang } = useI18n();
  const day = useDay();
  const mayEdit = useMayEdit();
  const [reload, setReload] = useState(0);
  const { rows, error } = useList<Subscription>("/api/subscriptions", reload);
  const { error: runError, busy, run } = useAction();
  const [notice, setNotice] = useState<string | null>(null);
  return (
    <Area
      title={t("subscriptions")}
      actions={
        mayEdit && (
          <>
            <Link className="button" to="/billing/subscriptions/new">
              {t("newSubscription")}
            </Link>
            <button
              type="button"
              className="secondary"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  await api("POST", "/api/subscriptions/run");
                  setNotice(t("billingRunDone"));
                  setReload((n) => n + 1);
                })
              }
            >
              {t("billDueNow")}
            </button>
          </>
        )
      }
    >
      <FormError error={error ?? runError} />
      {notice && <p role="status">{notice}</p>}
      <Table
        rows={rows}
        empty={t("nothing")}
        columns={[
          { label: t("name"), cell: (x) => <Link to={`/billing/subscriptions/${x.id}`}>{x.name}</Link> },
          { label: t("status"), cell: (x) => t(`subscriptionStatus.${x.status}` as Key) },
          { label: t("frequency"), cell: (x) => t(`frequency.${x.frequency}` as Key) },
          { label: t("nextRun"), cell: (x) => day(x.nextRun) },
          { label: t("cyclesBilled"), numeric: true, cell: (x) => x.cyclesBilled },
          { label: t("total"), numeric: true, cell: (x) => money(x.total, x.currency, lang) },
        ]}
      />
    </Area>
  );
}

interface SubscriptionDraft {
  name: string;
  companyId: string;
  contactId: string;
  currency: string;
  lines: LineDraft[];
  frequency: string;
  interval: string;
  startDate: string;
  endDate: string;
  remainingCycles: string;
  timeZone: string;
  paymentTerms: string;
  autoIssue: boolean;
  autoCharge: boolean;
}

function subscriptionDraft(x: Subscription | null): SubscriptionDraft {
  const currency = x?.currency ?? "EUR";
  return {
    name: x?.name ?? "",
    companyId: x?.companyId ?? "",
    contactId: x?.contactId ?? "",
    currency,
    lines: linesOf(x?.lines ?? [], minorPerMajor(currency)),
    frequency: x?.frequency ?? "monthly",
    interval: String(x?.interval ?? 1),
    startDate: x?.startDate ?? "",
    endDate: x?.endDate ?? "",
    remainingCycles: x?.remainingCycles != null ? String(x.remainingCycles) : "",
    timeZone: x?.timeZone ?? (Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC"),
    paymentTerms: x?.paymentTerms ?? "",
    autoIssue: x?.autoIssue ?? true,
    autoCharge: x?.autoCharge ?? false,
  };
}

export function SubscriptionPage() {
  const { id } = useParams();
  const isNew = id === "new";
  const { t } = useI18n();
  const day = useDay();
  const navigate = useNavigate();
  const mayEdit = useMayEdit();
  const [sub, setSub] = useState<Subscription | null>(null);
  const [draft, setDraft] = useState<SubscriptionDraft>(() => subscriptionDraft(null));
  const [notice, setNotice] = useState<string | null>(null);
  const { error, setError, busy, run } = useAction();
  const adopt = (x: Subscription) => {
    setSub(x);
    setDraft(subscriptionDraft(x));
  };
  useEffect(() => {
    if (isNew || !id) return;
    api<Subscription>("GET", `/api/subscriptions/${id}`).then(adopt, setError);
  }, [id, isNew, setError]);
  const num = (v: string) => (v.trim() === "" ? null : Number.isFinite(Number(v)) ? Number(v) : v);
  const save = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void run(async () => {
      const per = minorPerMajor(/^[A-Z]{3}$/.test(draft.currency) ? draft.currency : "EUR");
      const body = {
        name: draft.name.trim(),
        companyId: draft.companyId || null,
        contactId: draft.contactId || null,
        currency: draft.currency.trim().toUpperCase() || null,
        lines: itemsOf(draft.lines, per),
        frequency: draft.frequency,
        interval: num(draft.interval),
        startDate: draft.startDate || null,
        endDate: draft.endDate || null,
        remainingCycles: num(draft.remainingCycles),
        timeZone: draft.timeZone.trim() || null,
        paymentTerms: draft.paymentTerms || null,
        autoIssue: draft.autoIssue,
        autoCharge: draft.autoCharge,
      };
      if (isNew) {
        const made = await api<Subscription>("POST", "/api/subscriptions", body);
        navigate(`/billing/subscriptions/${made.id}`, { replace: true });
        return;
      }
      adopt(await api<Subscription>("PATCH", `/api/subscriptions/${id}`, { ...body, version: sub?.version }));
      setNotice(t("saved"));
    });
  };
  const setStatus = (status: string) =>
    void run(async () => {
      adopt(await api<Subscription>("PATCH", `/api/subscriptions/${id}`, { status, version: sub?.version }));
      setNotice(t("saved"));
    });
  if (!isNew && !sub) return error ? <FormError error={error} /> : <p role="status">{t("loading")}</p>;
  const editable = mayEdit && (isNew || (sub?.status !== "cancelled" && sub?.status !== "finished"));
  const set = (k: keyof SubscriptionDraft) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });
  return (
    <Area title={isNew ? t("newSubscription") : (sub?.name ?? "")} actions={sub && <span className="state">{t(`subscriptionStatus.${sub.status}` as Key)}</span>}>
      <p>
        <Link to="/billing/subscriptions">{t("back")}</Link>
      </p>
      <FormError
        error={error}
        fields={["name", "companyId", "contactId", "currency", "lines", "frequency", "interval", "startDate", "endDate", "remainingCycles", "timeZone", "paymentTerms", "autoCharge"]}
      />
      {notice && <p role="status">{notice}</p>}
      {sub && (
        <dl className="facts">
          <dt>{t("nextRun")}</dt>
          <dd>{day(sub.nextRun)}</dd>
          <dt>{t("cyclesBilled")}</dt>
          <dd>{sub.cyclesBilled}</dd>
          {sub.lastInvoiceId && (
            <>
              <dt>{t("lastInvoice")}</dt>
              <dd>
                <Link to={`/billing/invoices/${sub.lastInvoiceId}`}>{t("open")}</Link>
              </dd>
            </>
          )}
        </dl>
      )}
      <form onSubmit={save} noValidate className="record wide">
        <fieldset disabled={!editable} className="plain">
          <Field label={t("name")} required value={draft.name} onChange={set("name")} error={fieldError(error, "name")} />
          <RecordPicker label={t("company")} kind="companies" value={draft.companyId} onChange={(v) => setDraft((d) => ({ ...d, companyId: v }))} error={fieldError(error, "companyId")} />
          <RecordPicker label={t("contact")} kind="contacts" value={draft.contactId} onChange={(v) => setDraft((d) => ({ ...d, contactId: v }))} error={fieldError(error, "contactId")} />
          <Field label={t("currency")} value={draft.currency} maxLength={3} onChange={(e) => setDraft({ ...draft, currency: e.target.value.toUpperCase() })} error={fieldError(error, "currency")} />
          <LineItems label={t("lineItems")} field="lines" lines={draft.lines} currency={draft.currency} onChange={(lines) => setDraft((d) => ({ ...d, lines }))} errorOf={(f) => fieldError(error, f)} />
          <SelectField
            label={t("frequency")}
            value={draft.frequency}
            onChange={(v) => setDraft({ ...draft, frequency: v })}
            options={FREQUENCIES.map((f) => ({ value: f, label: t(`frequency.${f}` as Key) }))}
            error={fieldError(error, "frequency")}
          />
          <Field label={t("every")} type="number" min={1} value={draft.interval} onChange={set("interval")} error={fieldError(error, "interval")} />
          <Field label={t("startDate")} type="date" value={draft.startDate} onChange={set("startDate")} error={fieldError(error, "startDate")} />
          <Field label={t("endDate")} type="date" value={draft.endDate} onChange={set("endDate")} error={fieldError(error, "endDate")} />
          <Field label={t("remainingCycles")} type="number" min={1} value={draft.remainingCycles} onChange={set("remainingCycles")} error={fieldError(error, "remainingCycles")} />
          <Field label={t("timezone")} value={draft.timeZone} onChange={set("timeZone")} error={fieldError(error, "timeZone")} />
          <SelectField
            label={t("paymentTerms")}
            value={draft.paymentTerms}
            blank
            onChange={(v) => setDraft({ ...draft, paymentTerms: v })}
            options={TERMS.map((x) => ({ value: x, label: t(`terms.${x}` as Key) }))}
            error={fieldError(error, "paymentTerms")}
          />
          <label className="check">
            <input type="checkbox" checked={draft.autoIssue} onChange={(e) => setDraft({ ...draft, autoIssue: e.target.checked })} /> {t("autoIssue")}
          </label>
          <label className="check">
            <input type="checkbox" checked={draft.autoCharge} onChange={(e) => setDraft({ ...draft, autoCharge: e.target.checked })} /> {t("autoCharge")}
          </label>
          {fieldError(error, "autoCharge") && <p className="field-error">{fieldError(error, "autoCharge")}</p>}
        </fieldset>
        {editable && (
          <div className="toolbar">
            <button type="submit" disabled={busy}>
              {isNew ? t("createSubscription") : t("save")}
            </button>
            {sub?.status === "active" && (
              <button type="button" className="secondary" disabled={busy} onClick={() => setStatus("paused")}>
                {t("pause")}
              </button>
            )}
            {sub?.status === "paused" && (
              <button type="button" className="secondary" disabled={busy} onClick={() => setStatus("active")}>
                {t("resume")}
              </button>
            )}
            {sub && (
              <button type="button" className="danger" disabled={busy} onClick={() => setStatus("cancelled")}>
                {t("endSubscription")}
              </button>
            )}
          </div>
        )}
      </form>
    </Area>
  );
}

/** Reads an image file as a `data:` URL (the logo printed on documents). */
function dataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error ?? new Error("unreadable file"));
    r.readAsDataURL(file);
  });
}

export function BillingSettingsPage() {
  const { t } = useI18n();
  const mayEdit = useMayEdit();
  const [settings, setSettings] = useState<Settings | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { error, setError, busy, run } = useAction();
  useEffect(() => {
    api<Settings>("GET", "/api/billing/settings").then(setSettings, setError);
  }, [setError]);
  if (!settings) return error ? <FormError error={error} /> : <p role="status">{t("loading")}</p>;
  const seller = settings.seller;
  const setSeller = (k: keyof typeof seller) => (e: { target: { value: string } }) =>
    setSettings({ ...settings, seller: { ...seller, [k]: e.target.value } });
  const setField = (k: "paymentInstructions" | "footer" | "accentColor" | "currency") => (e: { target: { value: string } }) =>
    setSettings({ ...settings, [k]: e.target.value });
  const save = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void run(async () => {
      const body = {
        seller: {
          ...seller,
          addressLines: (seller.addressLines ?? []).map((l) => l.trim()).filter(Boolean),
          contactName: seller.contactName?.trim() || null,
          email: seller.email?.trim() || null,
          phone: seller.phone?.trim() || null,
          country: seller.country?.trim() || null,
          taxId: seller.taxId?.trim() || null,
          registration: seller.registration?.trim() || null,
          website: seller.website?.trim() || null,
        },
        paymentTerms: settings.paymentTerms,
        paymentInstructions: settings.paymentInstructions?.trim() || null,
        currency: settings.currency,
        quoteValidityDays: settings.quoteValidityDays,
        footer: settings.footer?.trim() || null,
        accentColor: settings.accentColor,
        logo: settings.logo ?? null,
        language: settings.language,
        version: settings.version,
      };
      setSettings(await api<Settings>("PUT", "/api/billing/settings", body));
      setNotice(t("saved"));
    });
  };
  const e = (f: string) => fieldError(error, f);
  return (
    <Area title={t("billingSettings")}>
      <FormError error={error} fields={["seller", "paymentTerms", "paymentInstructions", "currency", "quoteValidityDays", "footer", "accentColor", "logo", "language"]} />
      {notice && <p role="status">{notice}</p>}
      <form onSubmit={save} noValidate className="record wide">
        <fieldset disabled={!mayEdit} className="plain">
          <h2>{t("seller")}</h2>
          <Field label={t("name")} value={seller.name ?? ""} onChange={setSeller("name")} error={e("seller.name")} />
          <Field label={t("contact")} value={seller.contactName ?? ""} onChange={setSeller("contactName")} error={e("seller.contactName")} />
          <Field label={t("email")} type="email" value={seller.email ?? ""} onChange={setSeller("email")} error={e("seller.email")} />
          <Field label={t("phone")} value={seller.phone ?? ""} onChange={setSeller("phone")} error={e("seller.phone")} />
          <div className="field">
            <label htmlFor="seller-address">{t("address")}</label>
            <textarea
              id="seller-address"
              rows={3}
              value={(seller.addressLines ?? []).join("\n")}
              onChange={(ev) => setSettings({ ...settings, seller: { ...seller, addressLines: ev.target.value.split("\n") } })}
            />
          </div>
          <Field label={t("country")} value={seller.country ?? ""} maxLength={2} onChange={setSeller("country")} error={e("seller.country")} />
          <Field label={t("taxId")} value={seller.taxId ?? ""} onChange={setSeller("taxId")} error={e("seller.taxId")} />
          <Field label={t("registration")} value={seller.registration ?? ""} onChange={setSeller("registration")} error={e("seller.registration")} />
          <Field label={t("website")} value={seller.website ?? ""} onChange={setSeller("website")} error={e("seller.website")} />
          <h2>{t("documentDefaults")}</h2>
          <SelectField
            label={t("paymentTerms")}
            value={settings.paymentTerms}
            onChange={(v) => setSettings({ ...settings, paymentTerms: v })}
            options={TERMS.map((x) => ({ value: x, label: t(`terms.${x}` as Key) }))}
            error={e("paymentTerms")}
          />
          <Field label={t("paymentInstructions")} value={settings.paymentInstructions ?? ""} onChange={setField("paymentInstructions")} error={e("paymentInstructions")} />
          <Field label={t("currency")} value={settings.currency} maxLength={3} onChange={setField("currency")} error={e("currency")} />
          <Field
            label={t("quoteValidityDays")}
            type="number"
            min={1}
            value={String(settings.quoteValidityDays)}
            onChange={(ev) => setSettings({ ...settings, quoteValidityDays: Number(ev.target.value) })}
            error={e("quoteValidityDays")}
          />
          <Field label={t("footer")} value={settings.footer ?? ""} onChange={setField("footer")} error={e("footer")} />
          <Field label={t("accentColor")} type="color" value={settings.accentColor} onChange={setField("accentColor")} error={e("accentColor")} />
          <SelectField
            label={t("documentLanguage")}
            value={settings.language}
            onChange={(v) => setSettings({ ...settings, language: v })}
            options={[
              { value: "en", label: "English" },
              { value: "fr", label: "Français" },
              { value: "ar", label: "العربية" },
            ]}
            error={e("language")}
          />
          <div className="field">
            <label htmlFor="billing-logo">{t("logo")}</label>
            {settings.logo && <img src={settings.logo} alt={t("logo")} className="logo-preview" />}
            <input
              id="billing-logo"
              type="file"
              accept="image/png,image/svg+xml"
              onChange={(ev) => {
                const file = ev.target.files?.[0];
                if (file) void dataUrl(file).then((logo) => setSettings({ ...settings, logo }), setError);
              }}
            />
            {e("logo") && <p className="field-error">{e("logo")}</p>}
            {settings.logo && (
              <button type="button" className="link" onClick={() => setSettings({ ...settings, logo: null })}>
                {t("removeLogo")}
              </button>
            )}
          </div>
        </fieldset>
        {mayEdit && (
          <button type="submit" disabled={busy}>
            {t("save")}
          </button>
        )}
      </form>
    </Area>
  );
}
