// Small building blocks: labelled fields with their error, the form's alert, the
// language picker, the card the account pages sit in.
import { useCallback, useId, useState, type InputHTMLAttributes, type ReactNode } from "react";
import { ApiError } from "./api";
import { LANGUAGES, useI18n, type Language } from "./i18n";

/** Each language in itself. */
export const NATIVE: Record<Language, string> = { en: "English", fr: "Français", ar: "العربية" };

/** Runs an action of a form: busy while it runs, its error kept for the form to show. */
export function useAction() {
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const run = useCallback(async (action: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  }, []);
  return { error, setError, busy, run };
}

export function Field({
  label,
  error,
  ...input
}: { label: string; error?: string } & InputHTMLAttributes<HTMLInputElement>) {
  const id = useId();
  const errId = `${id}-error`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={error ? errId : undefined} {...input} />
      {error && (
        <p id={errId} className="field-error">
          {error}
        </p>
      )}
    </div>
  );
}

/** A labelled choice with its error; `blank` adds an empty first option ("—"). */
export function SelectField({
  label,
  value,
  onChange,
  options,
  error,
  blank = false,
  disabled,
}: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  options: { value: string; label: string }[];
  error?: string;
  blank?: boolean;
  disabled?: boolean;
}) {
  const id = useId();
  const errId = `${id}-error`;
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={value}
        disabled={disabled}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? errId : undefined}
        onChange={(e) => onChange(e.target.value)}
      >
        {blank && <option value="">—</option>}
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
      {error && (
        <p id={errId} className="field-error">
          {error}
        </p>
      )}
    </div>
  );
}

/** The error of a form that no field shows (or every error, for unknown fields). */
export function FormError({ error, fields = [] }: { error: unknown; fields?: string[] }) {
  const { t } = useI18n();
  if (!error) return null;
  if (error instanceof ApiError) {
    const shown = error.errors.filter((e) => about(fields, e.field));
    if (shown.length > 0 && shown.length === error.errors.length) return null;
    const rest = error.errors.filter((e) => !about(fields, e.field));
    return (
      <div role="alert" className="alert">
        {rest.length > 0 ? rest.map((e) => <p key={e.field + e.code}>{`${e.field}: ${e.message}`}</p>) : <p>{error.message}</p>}
      </div>
    );
  }
  return (
    <div role="alert" className="alert">
      <p>{t("problem", { detail: String(error) })}</p>
    </div>
  );
}

export function fieldError(error: unknown, field: string): string | undefined {
  return error instanceof ApiError ? error.field(field) : undefined;
}

/** The first error about `field` or a part of it (`contactIds.1`, `customFields.tier`). */
export function fieldErrorUnder(error: unknown, field: string): string | undefined {
  if (!(error instanceof ApiError)) return undefined;
  const e = error.errors.find((x) => x.field === field || x.field.startsWith(`${field}.`));
  return e ? (e.field === field ? e.message : `${e.field.slice(field.length + 1)}: ${e.message}`) : undefined;
}

/** Is the error about one of `fields` or a part of one (`products.0.unitPrice`)? */
function about(fields: string[], field: string): boolean {
  return fields.some((f) => field === f || field.startsWith(`${f}.`));
}

/** The language of the screens; `onPick` also hears of a choice (to store it with the
 * signed-in user's settings). */
export function LanguagePicker({ onPick }: { onPick?: (l: Language) => void }) {
  const { lang, setLang, t } = useI18n();
  const id = useId();
  const pick = (l: Language) => {
    setLang(l);
    onPick?.(l);
  };
  return (
    <div className="language">
      <label htmlFor={id}>{t("language")}</label>
      <select id={id} value={lang} onChange={(e) => pick(e.target.value as Language)}>
        {LANGUAGES.map((l) => (
          <option key={l} value={l} lang={l}>
            {NATIVE[l]}
          </option>
        ))}
      </select>
    </div>
  );
}

export function AuthCard({ title, children }: { title: string; children: ReactNode }) {
  const { t } = useI18n();
  return (
    <main className="auth">
      <div className="auth-card">
        <p className="brand">{t("appName")}</p>
        <h1>{title}</h1>
        {children}
        <LanguagePicker />
      </div>
    </main>
  );
}

/** A link to hand to someone (a customer's pay page …): shown to select, copied with one
 * click, or opened in a new tab. */
export function CopyLink({ label, url, hint }: { label: string; url: string; hint?: string }) {
  const { t } = useI18n();
  const id = useId();
  const [copied, setCopied] = useState(false);
  const copy = () => {
    if (!navigator.clipboard) return;
    navigator.clipboard.writeText(url).then(
      () => setCopied(true),
      () => setCopied(false),
    );
  };
  return (
    <div className="field copy-link">
      <label htmlFor={id}>{label}</label>
      <div className="copy-row">
        <input id={id} readOnly value={url} dir="ltr" onFocus={(e) => e.currentTarget.select()} />
        <button type="button" className="secondary" onClick={copy}>
          {copied ? t("linkCopied") : t("copyLink")}
        </button>
        <a className="button secondary" href={url} target="_blank" rel="noopener noreferrer">
          {t("openLink")}
        </a>
      </div>
      {hint && <p className="hint">{hint}</p>}
    </div>
  );
}
