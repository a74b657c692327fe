import { describe, expect, it } from "vitest";
import { defaultValue, draftOf, emptyDraft, fieldsOf, specOf, type CatalogSource } from "./reportSpec";

const catalog: CatalogSource[] = [
  {
    name: "deals",
    joins: ["companies"],
    fields: [
      { name: "owner_id", type: "text", nullable: false },
      { name: "pipeline_stage", type: "text", nullable: false, choices: ["proposal", "closed_won"] },
      { name: "amount_cents", type: "integer", nullable: true },
      { name: "closed_at", type: "timestamp", nullable: true },
    ],
  },
  { name: "companies", joins: [], fields: [{ name: "industry", type: "text", nullable: true }] },
];

describe("the report builder's spec", () => {
  it("offers the source's fields and each joined table's as table.field", () => {
    expect(fieldsOf(catalog, { source: "deals", joins: ["companies"] }).map((f) => f.name)).toEqual([
      "owner_id",
      "pipeline_stage",
      "amount_cents",
      "closed_at",
      "companies.industry",
    ]);
  });

  it("writes nothing to run until a field is grouped or aggregated", () => {
    expect(specOf(emptyDraft(), [])).toBeNull();
  });

  it("writes groups, values, filters, sort and limit as the API takes them, and reads them back", () => {
    const fields = fieldsOf(catalog, { source: "deals", joins: ["companies"] });
    const amount = fields.find((f) => f.name === "amount_cents");
    expect(amount && defaultValue(amount)).toEqual({ fn: "sum", field: "amount_cents" });
    const draft = {
      ...emptyDraft(),
      joins: ["companies"],
      groupBy: [{ field: "companies.industry" }, { field: "closed_at", bucket: "quarter" as const }],
      values: [{ fn: "sum" as const, field: "amount_cents" }, { fn: "count" as const }],
      conditions: [{ field: "pipeline_stage", op: "eq" as const, value: "closed_won" }],
      sort: "sum_amount_cents",
      descending: true,
      limit: 20,
    };
    const spec = specOf(draft, fields, "Won by industry");
    expect(spec).toEqual({
      title: "Won by industry",
      source: "deals",
      join: ["companies"],
      filter: 'pipeline_stage[eq]:"closed_won"',
      groupBy: ["companies.industry", { field: "closed_at", bucket: "quarter" }],
      aggregates: [{ fn: "sum", field: "amount_cents" }, { fn: "count" }],
      sort: "sum_amount_cents[desc]",
      limit: 20,
    });
    expect(spec && draftOf(spec, catalog)).toEqual(draft);
  });

  it("counts the rows of groups without values, and keeps a hand-written filter", () => {
    const spec = specOf({ ...emptyDraft(), groupBy: [{ field: "owner_id" }] }, []);
    expect(spec?.aggregates).toEqual([{ fn: "count" }]);
    const opened = draftOf({ source: "deals", filter: "or(pipeline_stage[eq]:proposal,amount_cents[gt]:5)", groupBy: ["owner_id"] }, catalog);
    expect(opened.rawFilter).toBe("or(pipeline_stage[eq]:proposal,amount_cents[gt]:5)");
    expect(specOf(opened, fieldsOf(catalog, opened))?.filter).toBe("or(pipeline_stage[eq]:proposal,amount_cents[gt]:5)");
  });
});
