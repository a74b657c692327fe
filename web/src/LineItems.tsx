// A deal's line items: what is sold, how many, at what unit price (in major units of the
// deal's currency), less a discount, plus tax; a line may be a catalogue product, which
// fills in its name, price and tax. Each line's total follows the server's rule: the
// discount and the tax each rounded half away from zero on the line.
import { useEffect, useId, useState } from "react";
import { api, minorPerMajor, money, type Page } from "./api";
import { useI18n } from "./i18n";
import type { components } from "./openapi";

type Product = components["schemas"]["Product"];

/** A line as the form holds it: the typed text of each cell. */
export interface LineDraft {
  productId: string;
  name: string;
  quantity: string;
  unitPrice: string;
  discountPercent: string;
  taxPercent: string;
}

export const BLANK_LINE: LineDraft = { productId: "", name: "", quantity: "1", unitPrice: "", discountPercent: "", taxPercent: "" };

/** A percentage of an amount in minor units, rounded half away from zero. */
function percentOf(amount: number, percent: number): number {
  const exact = (amount * Math.round(percent * 100)) / 10_000;
  return Math.sign(exact) * Math.round(Math.abs(exact));
}

/** A line's total in minor units, or null while a cell is not a number. */
export function lineTotal(l: LineDraft, per: number): number | null {
  const q = Number(l.quantity || "1");
  const u = Number(l.unitPrice);
  const d = Number(l.discountPercent || "0");
  const t = Number(l.taxPercent || "0");
  if (l.unitPrice.trim() === "" || ![q, u, d, t].every(Number.isFinite)) return null;
  const gross = q * Math.round(u * per);
  const net = gross - percentOf(gross, d);
  return net + percentOf(net, t);
}

/** The API's lines as the form's. */
export function linesOf(items: unknown, per: number): LineDraft[] {
  if (!Array.isArray(items)) return [];
  return items.map((raw) => {
    const l = raw as Record<string, unknown>;
    const text = (v: unknown) => (v === null || v === undefined ? "" : String(v));
    return {
      productId: text(l.productId),
      name: text(l.name),
      quantity: text(l.quantity ?? 1),
      unitPrice: l.unitPrice === null || l.unitPrice === undefined ? "" : String(Number(l.unitPrice) / per),
      discountPercent: text(l.discountPercent),
      taxPercent: text(l.taxPercent),
    };
  });
}

/** The form's lines as the API takes them; a cell that is not a number is sent as typed,
 * for the server to name it. */
export function itemsOf(lines: LineDraft[], per: number): Record<string, unknown>[] {
  const num = (s: string) => (Number.isFinite(Number(s)) ? Number(s) : s);
  return lines.map((l) => {
    const item: Record<string, unknown> = {
      name: l.name.trim(),
      quantity: l.quantity.trim() === "" ? 1 : num(l.quantity.trim()),
      unitPrice: Number.isFinite(Number(l.unitPrice)) && l.unitPrice.trim() !== "" ? Math.round(Number(l.unitPrice) * per) : l.unitPrice,
    };
    if (l.productId) item.productId = l.productId;
    if (l.discountPercent.trim()) item.discountPercent = num(l.discountPercent.trim());
    if (l.taxPercent.trim()) item.taxPercent = num(l.taxPercent.trim());
    return item;
  });
}

/** The catalogue's active products, read once per screen. */
function useProducts(): Product[] {
  const [products, setProducts] = useState<Product[]>([]);
  useEffect(() => {
    api<Page<Product>>("GET", "/api/products?limit=200&sort=name&filter=active[eq]:true").then(
      (p) => setProducts(p.data),
      () => setProducts([]),
    );
  }, []);
  return products;
}

export function LineItems({
  label,
  field,
  lines,
  currency,
  onChange,
  errorOf,
}: {
  label: string;
  /** The API's field (`products`): errors name `products.<i>.<cell>`. */
  field: string;
  lines: LineDraft[];
  currency: string;
  onChange: (lines: LineDraft[]) => void;
  errorOf: (field: string) => string | undefined;
}) {
  const { t, lang } = useI18n();
  const id = useId();
  const products = useProducts();
  const cur = /^[A-Z]{3}$/.test(currency) ? currency : "EUR";
  const per = minorPerMajor(cur);
  const set = (i: number, patch: Partial<LineDraft>) => onChange(lines.map((l, j) => (j === i ? { ...l, ...patch } : l)));
  const pick = (i: number, productId: string) => {
    const p = products.find((x) => x.id === productId);
    if (!p) return set(i, { productId: "" });
    set(i, {
      productId: p.id,
      name: p.name,
      unitPrice: String(p.unitPrice / minorPerMajor(p.currency)),
      taxPercent: String(p.taxPercent ?? ""),
    });
  };
  const totals = lines.map((l) => lineTotal(l, per));
  const sum = totals.every((v) => v !== null) ? totals.reduce<number>((a, v) => a + (v ?? 0), 0) : null;
  const cell = (l: LineDraft, i: number, name: keyof LineDraft, cellLabel: string, type: "text" | "number" = "number", step?: string) => {
    const err = errorOf(`${field}.${i}.${name}`);
    const errId = `${id}-${i}-${name}-error`;
    return (
      <td>
        <input
          type={type}
          step={step}
          aria-label={`${cellLabel} (${t("lineN", { n: String(i + 1) })})`}
          value={l[name]}
          onChange={(e) => set(i, { [name]: e.target.value })}
          aria-invalid={err ? true : undefined}
          aria-describedby={err ? errId : undefined}
        />
        {err && (
          <p id={errId} className="field-error">
            {err}
          </p>
        )}
      </td>
    );
  };
  const fieldErr = errorOf(field);
  return (
    <fieldset className="line-items">
      <legend>{label}</legend>
      {lines.length > 0 && (
        <table>
          <thead>
            <tr>
              {products.length > 0 && <th scope="col">{t("product")}</th>}
              <th scope="col">{t("name")}</th>
              <th scope="col">{t("quantity")}</th>
              <th scope="col">{t("unitPrice")}</th>
              <th scope="col">{t("discountPercent")}</th>
              <th scope="col">{t("taxPercent")}</th>
              <th scope="col">{t("lineTotal")}</th>
              <th scope="col">
                <span className="visually-hidden">{t("actions")}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {lines.map((l, i) => (
              <tr key={i}>
                {products.length > 0 && (
                  <td>
                    <select aria-label={`${t("product")} (${t("lineN", { n: String(i + 1) })})`} value={l.productId} onChange={(e) => pick(i, e.target.value)}>
                      <option value="">—</option>
                      {products.map((p) => (
                        <option key={p.id} value={p.id}>
                          {p.sku} · {p.name}
                        </option>
                      ))}
                    </select>
                  </td>
                )}
                {cell(l, i, "name", t("name"), "text")}
                {cell(l, i, "quantity", t("quantity"), "number", "1")}
                {cell(l, i, "unitPrice", t("unitPrice"), "number", String(1 / per))}
                {cell(l, i, "discountPercent", t("discountPercent"), "number", "0.01")}
                {cell(l, i, "taxPercent", t("taxPercent"), "number", "0.01")}
                <td className="num">{totals[i] === null ? "—" : money(totals[i] ?? 0, cur, lang)}</td>
                <td>
                  <button
                    type="button"
                    className="link"
                    aria-label={t("removeItem", { name: l.name || t("lineN", { n: String(i + 1) }) })}
                    onClick={() => onChange(lines.filter((_, j) => j !== i))}
                  >
                    ✕
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
          <tfoot>
            <tr>
              <th scope="row" colSpan={products.length > 0 ? 6 : 5}>
                {t("grandTotal")}
              </th>
              <td className="num">{sum === null ? "—" : money(sum, cur, lang)}</td>
              <td />
            </tr>
          </tfoot>
        </table>
      )}
      {fieldErr && <p className="field-error">{fieldErr}</p>}
      <button type="button" className="secondary" onClick={() => onChange([...lines, { ...BLANK_LINE }])}>
        {t("addLine")}
      </button>
    </fieldset>
  );
}
