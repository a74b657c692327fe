// A deal's way into billing: a draft quote of its line items, or (once won) a draft
// invoice, opened in the billing screens; and a company's card on file, saved by its
// customer through a link. For managers and admins.
import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";
import { api, ApiError } from "./api";
import { useMayEdit } from "./areas";
import { useI18n } from "./i18n";
import type { components } from "./openapi";
import { CopyLink, FormError, useAction } from "./ui";

type SavedMethod = components["schemas"]["SavedPaymentMethod"];
type CardLink = components["schemas"]["CardLinkView"];

/** A won or open deal's way into billing: a quote of its lines, or (won) an invoice. */
export function DealBilling({ dealId, stage }: { dealId: string; stage: string }) {
  const { t } = useI18n();
  const mayEdit = useMayEdit();
  const navigate = useNavigate();
  const { error, busy, run } = useAction();
  if (!mayEdit) return null;
  const make = (what: "quote" | "invoice") =>
    void run(async () => {
      const made = await api<{ id: string }>("POST", `/api/deals/${dealId}/${what}`);
      navigate(`/billing/${what}s/${made.id}`);
    });
  return (
    <section aria-label={t("billing")} className="deal-billing">
      <FormError error={error} fields={[]} />
      <button type="button" className="secondary" disabled={busy} onClick={() => make("quote")}>
        {t("quoteDeal")}
      </button>
      {stage === "closed_won" && (
        <button type="button" className="secondary" disabled={busy} onClick={() => make("invoice")}>
          {t("invoiceDeal")}
        </button>
      )}
    </section>
  );
}

/** A company's saved payment method (what subscriptions charge): its label, a link for the
 * customer to save one, and forgetting it. */
export function CompanyBilling({ companyId }: { companyId: string }) {
  const { t, lang } = useI18n();
  const mayEdit = useMayEdit();
  const { error, busy, run } = useAction();
  const [method, setMethod] = useState<SavedMethod | null>(null);
  const [link, setLink] = useState<CardLink | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [read, setRead] = useState(0);
  useEffect(() => {
    let live = true;
    api<SavedMethod>("GET", `/api/companies/${companyId}/payment-method`).then(
      (m) => live && setMethod(m),
      (e: unknown) => live && (e instanceof ApiError && e.status === 404 ? setMethod(null) : undefined),
    );
    return () => {
      live = false;
    };
  }, [companyId, read]);
  if (!mayEdit) return null;
  const when = (v: string) => new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(v));
  return (
    <section aria-labelledby="card-on-file" className="company-billing">
      <h2 id="card-on-file">{t("cardOnFile")}</h2>
      <FormError error={error} fields={[]} />
      {notice && <p role="status">{notice}</p>}
      <p>{method ? t("cardSavedAt", { label: method.label, when: when(method.savedAt) }) : t("noCardOnFile")}</p>
      <div className="toolbar">
        <button
          type="button"
          className="secondary"
          disabled={busy}
          onClick={() =>
            void run(async () => {
              setNotice(null);
              setLink(await api<CardLink>("POST", `/api/companies/${companyId}/card-link`));
            })
          }
        >
          {t("cardLink")}
        </button>
        {method && (
          <button
            type="button"
            className="danger"
            disabled={busy}
            onClick={() =>
              void run(async () => {
                await api("DELETE", `/api/companies/${companyId}/payment-method`);
                setMethod(null);
                setLink(null);
                setNotice(t("cardForgotten"));
                setRead((n) => n + 1);
              })
            }
          >
            {t("forgetCard")}
          </button>
        )}
      </div>
      {link && <CopyLink label={t("cardLink")} url={link.url} hint={t("cardLinkHint", { when: when(link.expiresAt) })} />}
    </section>
  );
}
