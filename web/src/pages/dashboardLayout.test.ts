import { describe, expect, it } from "vitest";
import { DEFAULT_LAYOUT, filterQuery, isStandard, moved, withWidths } from "./dashboardLayout";

describe("a dashboard's layout", () => {
  it("starts with the eight standard reports", () => {
    expect(DEFAULT_LAYOUT).toHaveLength(8);
    expect(DEFAULT_LAYOUT.every((c) => isStandard(c.report) && c.width === 1)).toBe(true);
    expect(isStandard("0190a4c1-2222-7000-8000-000000000002")).toBe(false);
  });

  it("moves a card to another place and leaves the rest in order", () => {
    const cards = ["a", "b", "c", "d"].map((report) => ({ report, width: 1 }));
    expect(moved(cards, 3, 0).map((c) => c.report)).toEqual(["d", "a", "b", "c"]);
    expect(moved(cards, 0, 2).map((c) => c.report)).toEqual(["b", "c", "a", "d"]);
    expect(moved(cards, 1, 1)).toBe(cards);
    expect(moved(cards, -1, 2)).toBe(cards);
    expect(moved(cards, 0, 9)).toBe(cards);
  });

  it("reads a card written without its width as one column wide", () => {
    expect(withWidths([{ report: "r1_pipeline_by_stage" }, { report: "r4_stage_funnel", width: 2 }])).toEqual([
      { report: "r1_pipeline_by_stage", width: 1 },
      { report: "r4_stage_funnel", width: 2 },
    ]);
  });
});

describe("the filters every card runs with", () => {
  it("writes the date range and the owners the API's way, and nothing when none is set", () => {
    expect(filterQuery("", "", null)).toBe("");
    expect(filterQuery("2026-01-01", "2026-03-31", null)).toBe("?from=2026-01-01&to=2026-03-31");
    expect(filterQuery("", "2026-03-31", "u1,u2")).toBe("?to=2026-03-31&ownerId=u1%2Cu2");
    // A team without members owns nothing: an empty owner list, not "everyone".
    expect(filterQuery("", "", "")).toBe("?ownerId=");
  });
});
