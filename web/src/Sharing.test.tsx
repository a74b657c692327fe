import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuthProvider } from "./auth";
import { I18nProvider } from "./i18n";
import { Sharing, sharesOf, type Shares } from "./Sharing";
import type { SavedReport } from "./api";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

const answer = (body: unknown) => new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } });

describe("Sharing", () => {
  it("starts from the saved sharing and hands back users, teams and roles as the API takes them", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        if (url.startsWith("/api/users")) return answer({ data: [{ id: "u1", username: "ann" }, { id: "u2", username: "bob" }] });
        if (url.startsWith("/api/teams")) return answer({ data: [{ id: "t1", name: "East" }] });
        return answer({});
      }),
    );
    const saved = { sharedWith: { users: ["u1"], teams: [], roles: ["admin"] } } as unknown as SavedReport;
    let got: Shares | null = null;
    render(
      <I18nProvider>
        <AuthProvider>
          <Sharing
            initial={sharesOf(saved)}
            busy={false}
            action="Share it"
            onSave={async (s) => {
              got = s;
            }}
          />
        </AuthProvider>
      </I18nProvider>,
    );
    await waitFor(() => screen.getByRole("checkbox", { name: "East" }));
    expect((screen.getByRole("checkbox", { name: "ann" }) as HTMLInputElement).checked).toBe(true);
    fireEvent.click(screen.getByRole("checkbox", { name: "ann" }));
    fireEvent.click(screen.getByRole("checkbox", { name: "bob" }));
    fireEvent.click(screen.getByRole("checkbox", { name: "East" }));
    fireEvent.click(screen.getByRole("checkbox", { name: "Managers" }));
    fireEvent.click(screen.getByRole("button", { name: "Share it" }));
    expect(got).toEqual({ users: ["u2"], teams: ["t1"], roles: ["admin", "manager"] });
  });

  it("reads an unshared report as shared with no one", () => {
    expect(sharesOf(null)).toEqual({ users: [], teams: [], roles: [] });
  });
});
