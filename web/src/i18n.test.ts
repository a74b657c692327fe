import { describe, expect, it } from "vitest";
import { KEYS, LANGUAGES, translate } from "./i18n";

describe("translate", () => {
  it("fills variables in every language", () => {
    expect(translate("en", "signedInAs", { name: "ann" })).toBe("Signed in as ann");
    expect(translate("fr", "registered", { email: "a@b.c" })).toContain("a@b.c");
    expect(translate("ar", "signedInAs", { name: "ann" })).toContain("ann");
  });
});

describe("every language", () => {
  it("takes the same variables as English in each of its words", () => {
    const vars = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of KEYS) {
      const english = vars(translate("en", key));
      for (const lang of LANGUAGES) expect([lang, key, vars(translate(lang, key))]).toEqual([lang, key, english]);
    }
  });
});
