import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { customOf, objectOf } from "./CustomFields";
import { I18nProvider } from "./i18n";
import { itemsOf, lineTotal, linesOf } from "./LineItems";
import { RecordPicker } from "./Pickers";
import { bodyOf, draftOf, type FieldSpec } from "./RecordPage";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const line = { productId: "", name: "Seats", quantity: "3", unitPrice: "19.99", discountPercent: "10", taxPercent: "20" };

describe("line items", () => {
  it("total each line as the server does: discount and tax each rounded half away from zero", () => {
    // 3 × 1999 = 5997; − 10 % (599.7 → 600) = 5397; + 20 % (1079.4 → 1079) = 6476.
    expect(lineTotal(line, 100)).toBe(6476);
    expect(lineTotal({ ...line, discountPercent: "", taxPercent: "" }, 100)).toBe(5997);
    // 1 × 0.05 with 10 % tax: 5 + 0.5 → 6 (half away from zero).
    expect(lineTotal({ ...line, quantity: "1", unitPrice: "0.05", discountPercent: "", taxPercent: "10" }, 100)).toBe(6);
    expect(lineTotal({ ...line, unitPrice: "" }, 100)).toBeNull();
    expect(lineTotal({ ...line, quantity: "many" }, 100)).toBeNull();
  });

  it("go to the API in minor units, and what is not a number as typed for the server to name", () => {
    expect(itemsOf([line], 100)).toEqual([{ name: "Seats", quantity: 3, unitPrice: 1999, discountPercent: 10, taxPercent: 20 }]);
    expect(itemsOf([{ ...line, productId: "p1", quantity: "", unitPrice: "lots", discountPercent: "", taxPercent: "" }], 100)).toEqual([
      { productId: "p1", name: "Seats", quantity: 1, unitPrice: "lots" },
    ]);
    expect(itemsOf([{ ...line, unitPrice: "1500" }], 1)[0]?.unitPrice).toBe(1500);
  });

  it("come back from the API in major units", () => {
    expect(linesOf([{ name: "Seats", quantity: 3, unitPrice: 1999, discountPercent: 10, taxPercent: 20, total: 6476 }], 100)).toEqual([line]);
    expect(linesOf(null, 100)).toEqual([]);
  });
});

describe("custom fields", () => {
  it("keep text as text and other values as JSON", () => {
    const rows = customOf({ tier: "gold", seats: 12, tags: ["a"] });
    expect(rows).toEqual([
      { key: "tier", value: "gold", json: false },
      { key: "seats", value: "12", json: true },
      { key: "tags", value: '["a"]', json: true },
    ]);
    expect(objectOf(rows)).toEqual({ tier: "gold", seats: 12, tags: ["a"] });
    expect(objectOf([...rows, { key: "  ", value: "dropped", json: false }, { key: "seats", value: "a dozen", json: true }])).toEqual({
      tier: "gold",
      seats: "a dozen",
      tags: ["a"],
    });
    expect(customOf(null)).toEqual([]);
  });
});

describe("a form with pickers, lines and custom fields", () => {
  const fields: FieldSpec[] = [
    { name: "name", label: "Name", required: true },
    { name: "currency", label: "Currency" },
    { name: "companyId", label: "Company", type: "company" },
    { name: "contactIds", label: "Contacts", type: "contacts" },
    { name: "related", label: "About", type: "related" },
    { name: "products", label: "Lines", type: "lines", currencyField: "currency" },
    { name: "customFields", label: "Custom", type: "custom" },
  ];

  it("reads a record and sends it back the same", () => {
    const deal = {
      name: "Renewal",
      currency: "EUR",
      companyId: "c1",
      contactIds: ["p1", "p2"],
      related: { type: "deal", id: "d1" },
      products: [{ name: "Seats", quantity: 3, unitPrice: 1999, discountPercent: 10, taxPercent: 20, total: 6476 }],
      customFields: { tier: "gold" },
    };
    const { products, ...rest } = deal;
    const sent = products.map((p) => ({ name: p.name, quantity: p.quantity, unitPrice: p.unitPrice, discountPercent: p.discountPercent, taxPercent: p.taxPercent }));
    expect(bodyOf(fields, draftOf(fields, deal))).toEqual({ ...rest, products: sent });
  });

  it("clears a company and starts a new record empty", () => {
    const d = draftOf(fields, null);
    expect(bodyOf(fields, { ...d, name: "New" })).toEqual({
      name: "New",
      currency: null,
      companyId: null,
      contactIds: [],
      related: null,
      products: [],
      customFields: {},
    });
  });
});

describe("the record picker", () => {
  it("finds records by name as one types and keeps the chosen one's id", async () => {
    const asked: string[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        asked.push(url);
        const found = { data: [{ id: "c1", name: "Acme", domain: "acme.com" }, { id: "c2", name: "Acme Labs", domain: null }], pageInfo: { hasNextPage: false } };
        return new Response(JSON.stringify(found), { status: 200, headers: { "content-type": "application/json" } });
      }),
    );
    const picked = vi.fn();
    render(
      <I18nProvider>
        <RecordPicker label="Company" kind="companies" value="" onChange={picked} />
      </I18nProvider>,
    );
    const box = screen.getByRole("combobox", { name: "Company" });
    fireEvent.focus(box);
    fireEvent.change(box, { target: { value: "acm" } });
    await waitFor(() => expect(screen.getAllByRole("option")).toHaveLength(2));
    expect(asked.some((u) => u.startsWith("/api/companies?") && new URL(u, "http://x").searchParams.get("q") === "acm")).toBe(true);
    fireEvent.keyDown(box, { key: "ArrowDown" });
    fireEvent.keyDown(box, { key: "ArrowDown" });
    expect(box.getAttribute("aria-activedescendant")).toMatch(/c2$/);
    fireEvent.keyDown(box, { key: "Enter" });
    expect(picked).toHaveBeenCalledWith("c2");
  });
});
