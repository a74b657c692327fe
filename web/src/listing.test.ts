import { describe, expect, it } from "vitest";
import { csvCell, nextSort, quote, sortOf, toCsv, toFilter, type FilterField } from "./listing";

const fields: FilterField[] = [
  { field: "name", label: "Name", type: "text" },
  { field: "lifecycleStage", label: "Stage", type: "choice", choices: [{ value: "lead", label: "Lead" }] },
  { field: "amount", label: "Amount", type: "number" },
  { field: "createdAt", label: "Created", type: "date" },
  { field: "ownerId", label: "Owner", type: "user" },
];

describe("the filter bar's grammar", () => {
  it("writes nothing for no condition, one condition bare, several under and()", () => {
    expect(toFilter([], fields)).toBeUndefined();
    expect(toFilter([{ field: "lifecycleStage", op: "eq", value: "lead" }], fields)).toBe('lifecycleStage[eq]:"lead"');
    expect(
      toFilter(
        [
          { field: "name", op: "contains", value: "lee" },
          { field: "amount", op: "gte", value: "1000" },
          { field: "createdAt", op: "before", value: "2026-01-01" },
          { field: "ownerId", op: "eq", value: "u1" },
        ],
        fields,
      ),
    ).toBe('and(name[ilike]:"%lee%",amount[gte]:1000,createdAt[lt]:"2026-01-01",ownerId[eq]:"u1")');
  });

  it("quotes what people type, wildcards and quotes included", () => {
    expect(quote('say "hi" \\ bye')).toBe('"say \\"hi\\" \\\\ bye"');
    expect(toFilter([{ field: "name", op: "contains", value: '50%_"off"' }], fields)).toBe(
      'name[ilike]:"%50\\\\%\\\\_\\"off\\"%"',
    );
  });

  it("leaves out conditions still missing a value, and unknown fields", () => {
    expect(toFilter([{ field: "name", op: "eq", value: "  " }], fields)).toBeUndefined();
    expect(toFilter([{ field: "amount", op: "gt", value: "lots" }], fields)).toBeUndefined();
    expect(toFilter([{ field: "secret", op: "eq", value: "x" }], fields)).toBeUndefined();
    expect(toFilter([{ field: "name", op: "empty", value: "" }], fields)).toBe("name[is]:null");
  });

  it("puts a screen's fixed part first", () => {
    expect(toFilter([], fields, 'assignedUser[eq]:"u1"')).toBe('assignedUser[eq]:"u1"');
    expect(toFilter([{ field: "name", op: "notEmpty", value: "" }], fields, 'status[eq]:"open"')).toBe(
      'and(status[eq]:"open",name[is]:notnull)',
    );
  });
});

describe("sorting by a column", () => {
  it("starts ascending and flips on the same column", () => {
    expect(nextSort("-updatedAt", "name")).toBe("name");
    expect(nextSort("name", "name")).toBe("-name");
    expect(nextSort("-name", "name")).toBe("name");
    expect(sortOf("-name")).toEqual({ field: "name", descending: true });
  });
});

describe("CSV export", () => {
  it("quotes separators and defuses formulas", () => {
    expect(csvCell("plain")).toBe("plain");
    expect(csvCell('a,"b"')).toBe('"a,""b"""');
    expect(csvCell("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)");
    expect(csvCell("-2+3")).toBe("'-2+3");
    expect(csvCell("@x,y")).toBe("\"'@x,y\"");
    expect(toCsv(["Name", "Email"], [["Ann", "ann@x.com"], ["Bo\nB", ""]])).toBe('Name,Email\r\nAnn,ann@x.com\r\n"Bo\nB",\r\n');
  });
});

describe("reading a filter back", () => {
  it("gives the conditions toFilter wrote", async () => {
    const { conditionsOf } = await import("./listing");
    const conditions = [
      { field: "name", op: "contains" as const, value: '50%_"off", ok' },
      { field: "amount", op: "gte" as const, value: "1000" },
      { field: "createdAt", op: "before" as const, value: "2026-01-01" },
      { field: "lifecycleStage", op: "eq" as const, value: "lead" },
      { field: "ownerId", op: "notEmpty" as const, value: "" },
    ];
    expect(conditionsOf(toFilter(conditions, fields), fields)).toEqual(conditions);
    expect(conditionsOf(toFilter(conditions.slice(3, 4), fields), fields)).toEqual(conditions.slice(3, 4));
    expect(conditionsOf(undefined, fields)).toEqual([]);
    expect(conditionsOf("or(name[eq]:a,name[eq]:b)", fields)).toBeNull();
    expect(conditionsOf("secret[eq]:1", fields)).toBeNull();
  });
});
