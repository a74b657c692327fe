import { describe, expect, it } from "vitest";
import { bodyOf, draftOf, minorPerMajor, type FieldSpec } from "./RecordPage";
import { changedFields } from "./Timeline";

const fields: FieldSpec[] = [
  { name: "name", label: "Name", required: true },
  { name: "amount", label: "Amount", type: "money", currencyField: "currency" },
  { name: "currency", label: "Currency" },
  { name: "probability", label: "Probability", type: "number" },
  { name: "stage", label: "Stage", type: "select" },
  { name: "expectedCloseDate", label: "Close", type: "date" },
  { name: "notes", label: "Notes", type: "textarea" },
];

describe("a record's form", () => {
  it("shows money in major units and sends it back in minor units", () => {
    const d = draftOf(fields, { name: "Renewal", amount: 1250050, currency: "EUR", probability: 40, stage: "proposal", expectedCloseDate: "2027-01-31" });
    expect(d).toEqual({ name: "Renewal", amount: "12500.5", currency: "EUR", probability: "40", stage: "proposal", expectedCloseDate: "2027-01-31", notes: "" });
    expect(bodyOf(fields, d, 7)).toEqual({
      name: "Renewal",
      amount: 1250050,
      currency: "EUR",
      probability: 40,
      stage: "proposal",
      expectedCloseDate: "2027-01-31",
      notes: null,
      version: 7,
    });
    expect(minorPerMajor("JPY")).toBe(1);
    expect(bodyOf(fields, { ...d, currency: "JPY", amount: "1500" }).amount).toBe(1500);
  });

  it("clears emptied fields, leaves an unchosen choice out, and sends what is not a number as typed", () => {
    const body = bodyOf(fields, { name: " Ann ", amount: "", currency: "", probability: "lots", stage: "", expectedCloseDate: "", notes: " hi " });
    // The server names the field of a value it cannot take.
    expect(body).toEqual({ name: "Ann", amount: null, currency: null, probability: "lots", expectedCloseDate: null, notes: "hi" });
  });
});

describe("the timeline", () => {
  it("names the fields an audit event changed", () => {
    expect(changedFields({ email: { before: "a", after: "b" }, version: 3 })).toEqual(["email"]);
    expect(changedFields(null)).toEqual([]);
    expect(changedFields([1])).toEqual([]);
  });
});
