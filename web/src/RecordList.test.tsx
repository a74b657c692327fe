import { cleanup, fireEvent, render, screen } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { I18nProvider } from "./i18n";
import { RecordList } from "./RecordList";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function answer(body: unknown) {
  return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
}

describe("RecordList", () => {
  it("shows a page, then the next one by its cursor, then a search", async () => {
    const calls: string[] = [];
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string) => {
        calls.push(url);
        const params = new URL(url, "http://x").searchParams;
        if (params.get("after") === "c1") return answer({ data: [{ id: "2", name: "Bea" }], pageInfo: { hasNextPage: false } });
        if (params.get("q") === "zed") return answer({ data: [], pageInfo: { hasNextPage: false } });
        return answer({ data: [{ id: "1", name: "Ann" }], pageInfo: { hasNextPage: true, endCursor: "c1" } });
      }),
    );
    render(
      <I18nProvider>
        <RecordList<{ id: string; name: string }> title="People" path="/api/contacts" columns={[{ label: "Name", cell: (r) => r.name }]} />
      </I18nProvider>,
    );
    expect(await screen.findByRole("cell", { name: "Ann" })).toBeTruthy();
    expect(calls[0]).toBe("/api/contacts?limit=25&sort=-updatedAt");
    fireEvent.click(screen.getByRole("button", { name: "Next page" }));
    expect(await screen.findByRole("cell", { name: "Bea" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Next page" })).toBeNull();
    fireEvent.change(screen.getByRole("searchbox", { name: "Search" }), { target: { value: " zed " } });
    fireEvent.submit(screen.getByRole("search"));
    expect(await screen.findByText("Nothing here yet.")).toBeTruthy();
    expect(calls.at(-1)).toBe("/api/contacts?limit=25&sort=-updatedAt&q=zed");
  });

  it("shows a refusal as an alert", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ code: "forbidden", detail: "not allowed", status: 403 }), { status: 403 })),
    );
    render(
      <I18nProvider>
        <RecordList<{ id: string }> title="People" path="/api/contacts" columns={[]} />
      </I18nProvider>,
    );
    expect((await screen.findByRole("alert")).textContent).toContain("not allowed");
  });
});
