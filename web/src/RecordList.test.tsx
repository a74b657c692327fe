import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { I18nProvider } from "./i18n";
import { RecordList } from "./RecordList";
import { forgetUsers } from "./users";

beforeEach(() => {
  localStorage.clear();
  forgetUsers();
});

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function answer(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

type Person = { id: string; name: string; version: number; email?: string };

const USERS = { data: [{ id: "u1", username: "ann" }, { id: "u2", username: "bob" }], pageInfo: { hasNextPage: false } };

/** A fake API: users, a list answered by `list`, and every other call recorded. */
function serve(list: (params: URLSearchParams) => unknown, other: (method: string, url: string, body: unknown) => Response = () => answer({})) {
  const calls: { method: string; url: string; body: unknown; headers: Record<string, string> }[] = [];
  vi.stubGlobal(
    "fetch",
    vi.fn(async (url: string, init: RequestInit = {}) => {
      const method = init.method ?? "GET";
      const body = typeof init.body === "string" ? (JSON.parse(init.body) as unknown) : undefined;
      calls.push({ method, url, body, headers: (init.headers ?? {}) as Record<string, string> });
      if (url.startsWith("/api/users")) return answer(USERS);
      if (method === "GET") return answer(list(new URL(url, "http://x").searchParams));
      return other(method, url, body);
    }),
  );
  return calls;
}

const listCalls = (calls: { method: string; url: string }[]) => calls.filter((c) => c.method === "GET" && c.url.startsWith("/api/contacts")).map((c) => c.url);

function people(props: Partial<Parameters<typeof RecordList<Person>>[0]> = {}) {
  return render(
    <I18nProvider>
      <RecordList<Person>
        title="People"
        path="/api/contacts"
        nameOf={(r) => r.name}
        columns={[
          { key: "name", label: "Name", sort: "name", cell: (r) => r.name },
          { key: "email", label: "Email", hidden: true, cell: (r) => r.email ?? "" },
        ]}
        {...props}
      />
    </I18nProvider>,
  );
}

describe("RecordList", () => {
  it("shows a page, then the next one by its cursor, then a search", async () => {
    const calls = serve((params) => {
      if (params.get("after") === "c1") return { data: [{ id: "2", name: "Bea" }], pageInfo: { hasNextPage: false } };
      if (params.get("q") === "zed") return { data: [], pageInfo: { hasNextPage: false } };
      return { data: [{ id: "1", name: "Ann" }], pageInfo: { hasNextPage: true, endCursor: "c1" } };
    });
    people();
    expect(await screen.findByRole("cell", { name: "Ann" })).toBeTruthy();
    expect(listCalls(calls)[0]).toBe("/api/contacts?limit=25&sort=-updatedAt");
    fireEvent.click(screen.getByRole("button", { name: "Next page" }));
    expect(await screen.findByRole("cell", { name: "Bea" })).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Next page" })).toBeNull();
    fireEvent.change(screen.getByRole("searchbox", { name: "Search" }), { target: { value: " zed " } });
    fireEvent.submit(screen.getByRole("search"));
    expect(await screen.findByText("Nothing here yet.")).toBeTruthy();
    expect(listCalls(calls).at(-1)).toBe("/api/contacts?limit=25&sort=-updatedAt&q=zed");
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

  it("sorts by a header, ascending then descending, and says so", async () => {
    const calls = serve(() => ({ data: [{ id: "1", name: "Ann", version: 1 }], pageInfo: { hasNextPage: false } }));
    people();
    await screen.findByRole("cell", { name: "Ann" });
    fireEvent.click(screen.getByRole("button", { name: "Name" }));
    await waitFor(() => expect(listCalls(calls).at(-1)).toBe("/api/contacts?limit=25&sort=name"));
    expect(screen.getByRole("columnheader", { name: /Name/ }).getAttribute("aria-sort")).toBe("ascending");
    fireEvent.click(screen.getByRole("button", { name: /Name/ }));
    await waitFor(() => expect(listCalls(calls).at(-1)).toBe("/api/contacts?limit=25&sort=-name"));
    expect(screen.getByRole("columnheader", { name: /Name/ }).getAttribute("aria-sort")).toBe("descending");
  });

  it("writes the filter bar's conditions in the API's grammar, with the screen's own part", async () => {
    const calls = serve(() => ({ data: [{ id: "1", name: "Ann", version: 1 }], pageInfo: { hasNextPage: false } }));
    people({
      filter: 'status[eq]:"open"',
      filterFields: [
        { field: "name", label: "Name", type: "text" },
        { field: "ownerId", label: "Owner", type: "user" },
      ],
    });
    await screen.findByRole("cell", { name: "Ann" });
    expect(listCalls(calls)[0]).toContain(`filter=${encodeURIComponent('status[eq]:"open"').replace(/%20/g, "+")}`);
    fireEvent.click(screen.getByRole("button", { name: "Add a condition" }));
    fireEvent.change(screen.getByLabelText("Value of condition 1"), { target: { value: "lee" } });
    fireEvent.click(screen.getByRole("button", { name: "Add a condition" }));
    fireEvent.change(screen.getByLabelText("Field of condition 2"), { target: { value: "ownerId" } });
    await screen.findByRole("option", { name: "bob" });
    fireEvent.change(screen.getByLabelText("Value of condition 2"), { target: { value: "u2" } });
    fireEvent.click(screen.getByRole("button", { name: "Apply" }));
    await waitFor(() =>
      expect(new URL(listCalls(calls).at(-1) ?? "", "http://x").searchParams.get("filter")).toBe(
        'and(status[eq]:"open",name[ilike]:"%lee%",ownerId[eq]:"u2")',
      ),
    );
    fireEvent.click(screen.getByRole("button", { name: "Clear the filters" }));
    await waitFor(() => expect(new URL(listCalls(calls).at(-1) ?? "", "http://x").searchParams.get("filter")).toBe('status[eq]:"open"'));
  });

  it("keeps the chosen columns in this browser", async () => {
    serve(() => ({ data: [{ id: "1", name: "Ann", version: 1, email: "ann@x.com" }], pageInfo: { hasNextPage: false } }));
    const first = people();
    await screen.findByRole("cell", { name: "Ann" });
    expect(screen.queryByRole("cell", { name: "ann@x.com" })).toBeNull();
    fireEvent.click(screen.getByRole("checkbox", { name: "Email" }));
    expect(await screen.findByRole("cell", { name: "ann@x.com" })).toBeTruthy();
    first.unmount();
    people();
    expect(await screen.findByRole("cell", { name: "ann@x.com" })).toBeTruthy();
  });

  it("deletes selected rows with their versions and says which were refused", async () => {
    const calls = serve(
      () => ({
        data: [
          { id: "1", name: "Ann", version: 3 },
          { id: "2", name: "Bea", version: 5 },
        ],
        pageInfo: { hasNextPage: false },
      }),
      (_method, url) =>
        url.endsWith("/2")
          ? answer({ code: "version_conflict", detail: "changed meanwhile", status: 409 }, 409)
          : new Response(null, { status: 204 }),
    );
    people({ bulk: true, assign: { field: "ownerId" } });
    await screen.findByRole("cell", { name: "Ann" });
    fireEvent.click(screen.getByRole("checkbox", { name: "Select the whole page" }));
    const bar = screen.getByRole("group", { name: "With the selected rows" });
    expect(within(bar).getByText("2 selected")).toBeTruthy();
    fireEvent.click(within(bar).getByRole("button", { name: "Delete selected" }));
    expect(await screen.findByText("Done for 1.")).toBeTruthy();
    expect(screen.getByText("Not done for Bea: changed meanwhile")).toBeTruthy();
    const deletes = calls.filter((c) => c.method === "DELETE");
    expect(deletes.map((c) => [c.url, c.headers["If-Match"]])).toEqual([
      ["/api/contacts/1", '"3"'],
      ["/api/contacts/2", '"5"'],
    ]);
  });

  it("hands selected rows to another owner", async () => {
    const calls = serve(() => ({ data: [{ id: "1", name: "Ann", version: 3 }], pageInfo: { hasNextPage: false } }));
    people({ bulk: true, assign: { field: "ownerId" } });
    await screen.findByRole("cell", { name: "Ann" });
    fireEvent.click(screen.getByRole("checkbox", { name: "Select Ann" }));
    await screen.findByRole("option", { name: "bob" });
    fireEvent.change(screen.getByLabelText("Assign to"), { target: { value: "u2" } });
    fireEvent.click(screen.getByRole("button", { name: "Assign" }));
    expect(await screen.findByText("Done for 1.")).toBeTruthy();
    expect(calls.filter((c) => c.method === "PATCH").map((c) => [c.url, c.body])).toEqual([["/api/contacts/1", { ownerId: "u2", version: 3 }]]);
  });

  it("exports the whole list, filtered and sorted as shown, through the server", async () => {
    const calls = serve(() => ({ data: [{ id: "1", name: "Ann", version: 3 }], pageInfo: { hasNextPage: false } }));
    const made = vi.fn(() => "blob:export");
    vi.stubGlobal("URL", Object.assign(URL, { createObjectURL: made, revokeObjectURL: vi.fn() }));
    const clicked = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(() => undefined);
    people({ exportable: true, filter: "lifecycleStage[eq]:lead" });
    await screen.findByRole("cell", { name: "Ann" });
    fireEvent.click(screen.getByRole("button", { name: "Export all as XLSX" }));
    await waitFor(() => expect(made).toHaveBeenCalled());
    const exported = calls.filter((c) => c.url.startsWith("/api/contacts/export")).map((c) => c.url);
    expect(exported).toEqual(["/api/contacts/export?format=xlsx&sort=-updatedAt&filter=lifecycleStage%5Beq%5D%3Alead"]);
    expect(clicked).toHaveBeenCalledTimes(1);
    clicked.mockRestore();
  });
});
