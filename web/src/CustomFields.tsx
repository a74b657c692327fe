// A record's custom fields: a name and a value per row, added and removed freely (the
// API keeps any JSON object). Text stays text; a value that was not text (a number, a
// list) is edited as JSON and sent back as JSON when it still reads as JSON.
import { useId } from "react";
import { useI18n } from "./i18n";

/** A custom field as the form holds it. */
export interface CustomDraft {
  key: string;
  value: string;
  /** The value was not text: it is shown and read back as JSON. */
  json: boolean;
}

export function customOf(v: unknown): CustomDraft[] {
  if (!v || typeof v !== "object" || Array.isArray(v)) return [];
  return Object.entries(v as Record<string, unknown>).map(([key, value]) =>
    typeof value === "string" ? { key, value, json: false } : { key, value: JSON.stringify(value), json: true },
  );
}

/** The rows as the API's object; rows without a name are left out. */
export function objectOf(rows: CustomDraft[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of rows) {
    const key = r.key.trim();
    if (!key) continue;
    if (r.json) {
      try {
        out[key] = JSON.parse(r.value);
        continue;
      } catch {
        // Typed over with text: kept as text.
      }
    }
    out[key] = r.value;
  }
  return out;
}

export function CustomFields({
  label,
  rows,
  onChange,
  error,
}: {
  label: string;
  rows: CustomDraft[];
  onChange: (rows: CustomDraft[]) => void;
  error?: string;
}) {
  const { t } = useI18n();
  const id = useId();
  const set = (i: number, patch: Partial<CustomDraft>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <fieldset className="custom-fields">
      <legend>{label}</legend>
      {rows.map((r, i) => (
        <div className="custom-row" key={i}>
          <label htmlFor={`${id}-k${i}`} className="visually-hidden">
            {t("customName", { n: String(i + 1) })}
          </label>
          <input id={`${id}-k${i}`} value={r.key} placeholder={t("customNamePlaceholder")} onChange={(e) => set(i, { key: e.target.value })} />
          <label htmlFor={`${id}-v${i}`} className="visually-hidden">
            {t("customValue", { name: r.key || String(i + 1) })}
          </label>
          <input id={`${id}-v${i}`} value={r.value} onChange={(e) => set(i, { value: e.target.value })} />
          <button type="button" className="link" aria-label={t("removeItem", { name: r.key || String(i + 1) })} onClick={() => onChange(rows.filter((_, j) => j !== i))}>
            ✕
          </button>
        </div>
      ))}
      {error && <p className="field-error">{error}</p>}
      <button type="button" className="secondary" onClick={() => onChange([...rows, { key: "", value: "", json: false }])}>
        {t("addCustomField")}
      </button>
    </fieldset>
  );
}
