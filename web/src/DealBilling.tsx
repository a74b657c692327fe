// A deal's way into billing: a draft quote of its line items, or (once won) a draft
// invoice, opened in the billing screens. For managers and admins.
import { useNavigate } from "react-router-dom";
import { api } from "./api";
import { useMayEdit } from "./areas";
import { useI18n } from "./i18n";
import { FormError, useAction } from "./ui";

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
