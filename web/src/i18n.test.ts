import { describe, expect, it } from "vitest";
import { translate } from "./i18n";

describe("translate", () => {
  it("fills variables in every language", () => {
    expect(translate("en", "signedInAs", { name: "ann" })).toBe("Signed in as ann");
    expect(translate("fr", "registered", { email: "a@b.c" })).toContain("a@b.c");
    expect(translate("ar", "signedInAs", { name: "ann" })).toContain("ann");
  });
});
