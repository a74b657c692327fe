import { describe, expect, it } from "vitest";
import { ApiError, problemOf } from "./api";

describe("problemOf", () => {
  it("keeps the code, detail and every field error of a problem document", () => {
    const e = problemOf(422, {
      type: "/problems/validation_failed",
      title: "Unprocessable Entity",
      status: 422,
      detail: "validation failed: email: not an email",
      code: "validation_failed",
      errors: [
        { field: "email", code: "invalid_format", message: "not an email" },
        { field: "name", code: "required", message: "required" },
      ],
      requestId: "r1",
    });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(422);
    expect(e.code).toBe("validation_failed");
    expect(e.field("email")).toBe("not an email");
    expect(e.field("name")).toBe("required");
    expect(e.field("phone")).toBeUndefined();
    expect(e.requestId).toBe("r1");
  });

  it("makes do with an answer that is not a problem document", () => {
    const e = problemOf(502, undefined);
    expect(e.code).toBe("http_error");
    expect(e.message).toBe("HTTP 502");
    expect(e.errors).toEqual([]);
  });

  it("drops malformed field errors", () => {
    const e = problemOf(400, { code: "validation_failed", errors: [null, { nope: 1 }, { field: "x", code: "c", message: "m" }] });
    expect(e.errors).toHaveLength(1);
  });
});

import { frequencyOf, type UserSettings } from "./api";

describe("frequencyOf", () => {
  const base: UserSettings = {
    notificationPreferences: { "deal.won": { email: "digest", slack: "immediate", in_app: "off" } },
    language: "en",
    timezone: "UTC",
    displayOptions: { dateFormat: "YYYY-MM-DD", pageSize: 25, theme: "system" },
    reminderMinutes: 60,
    digestHour: 8,
    dashboard: null,
  };
  it("reads the stored names and the server's defaults", () => {
    expect(frequencyOf(base, "deal.won", "email")).toBe("digest");
    expect(frequencyOf(base, "deal.won", "slack")).toBe("immediate");
    expect(frequencyOf(base, "deal.won", "in_app")).toBe("off");
    expect(frequencyOf(base, "deal.won", "teams")).toBe("off");
    expect(frequencyOf(base, "task.assigned", "email")).toBe("immediate");
    expect(frequencyOf(base, "record.changed", "email")).toBe("off");
    expect(frequencyOf(base, "record.changed", "in_app")).toBe("immediate");
    expect(frequencyOf(base, "account.security", "email")).toBe("immediate");
  });
});

import { money } from "./api";

describe("money", () => {
  it("shows minor units in major units with the currency's own decimals", () => {
    expect(money(123456, "EUR", "en")).toBe("€1,234.56");
    expect(money(5000, "JPY", "en")).toBe("¥5,000");
    expect(money(123456, "EUR", "fr")).toMatch(/1\s234,56\s€/);
  });
});
