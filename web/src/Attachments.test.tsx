import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { MemoryRouter } from "react-router-dom";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Attachments, sizeOf } from "./Attachments";
import { Duplicates } from "./Duplicates";
import { I18nProvider } from "./i18n";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function answer(body: unknown, status = 200) {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": status >= 400 ? "application/problem+json" : "application/json" },
  });
}

const FILE = {
  id: "a1",
  parentType: "deal",
  parentId: "d1",
  fileName: "Contrat signé.pdf",
  contentType: "application/pdf",
  size: 14_200,
  sha256: "00",
  uploadedBy: "u1",
  createdAt: "2026-12-05T10:00:00Z",
  version: 1,
};

describe("sizeOf", () => {
  it("reads bytes as people do", () => {
    expect(sizeOf(820, "en")).toBe("820 bytes");
    expect(sizeOf(14_200, "en")).toBe("14.2 kB");
    expect(sizeOf(3_100_000, "en")).toBe("3.1 MB");
  });
});

describe("Attachments", () => {
  it("lists a record's files, uploads one as a form, shows a refused file's error at the picker, removes one", async () => {
    const calls: { method: string; url: string; body: unknown }[] = [];
    let uploads = 0;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit = {}) => {
        const method = init.method ?? "GET";
        calls.push({ method, url, body: init.body });
        if (method === "GET") return answer({ data: [FILE] });
        if (method === "DELETE") return answer(undefined, 204);
        uploads += 1;
        if (uploads === 1) return answer({ ...FILE, id: "a2", fileName: "notes.csv", contentType: "text/csv", size: 9 }, 201);
        return answer(
          {
            status: 422,
            code: "validation_failed",
            title: "invalid",
            errors: [{ field: "file", code: "unsupported_type", message: "files of type application/x-executable cannot be attached" }],
          },
          422,
        );
      }),
    );
    render(
      <I18nProvider>
        <Attachments path="/api/deals" id="d1" />
      </I18nProvider>,
    );
    expect(await screen.findByRole("button", { name: "Contrat signé.pdf" })).toBeTruthy();
    expect(screen.getByText("14.2 kB")).toBeTruthy();
    const picker = screen.getByLabelText("Attach files");
    fireEvent.change(picker, { target: { files: [new File(["a;b\n"], "notes.csv", { type: "text/csv" })] } });
    expect(await screen.findByRole("button", { name: "notes.csv" })).toBeTruthy();
    const post = calls.find((c) => c.method === "POST");
    expect(post?.url).toBe("/api/deals/d1/attachments");
    expect(post?.body).toBeInstanceOf(FormData);
    fireEvent.change(picker, { target: { files: [new File(["MZ"], "setup.exe")] } });
    expect(await screen.findByText("files of type application/x-executable cannot be attached")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Remove Contrat signé.pdf" }));
    await waitFor(() => expect(screen.queryByRole("button", { name: "Contrat signé.pdf" })).toBeNull());
    expect(calls.some((c) => c.method === "DELETE" && c.url === "/api/attachments/a1")).toBe(true);
  });
});

describe("Duplicates", () => {
  it("shows why a contact looks like another, merges it in and undoes the merge", async () => {
    const calls: { method: string; url: string; body: unknown }[] = [];
    let merged = false;
    const twin = { id: "c2", name: "LEE, Ann", email: "ann+crm@acme.com", jobTitle: "CTO", leadSource: null };
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit = {}) => {
        const method = init.method ?? "GET";
        calls.push({ method, url, body: typeof init.body === "string" ? JSON.parse(init.body) : undefined });
        if (url.endsWith("/duplicates")) {
          return answer({ data: merged ? [] : [{ contact: twin, reasons: ["email", "nameDomain"], score: 150 }] });
        }
        if (url.endsWith("/merge")) {
          merged = true;
          return answer({ contact: { id: "c1", name: "Ann Lee", jobTitle: "CTO" }, merge: { id: "m1", mergedIds: ["c2"] } });
        }
        merged = false;
        return answer({ id: "c1", name: "Ann Lee", jobTitle: null });
      }),
    );
    const seen: unknown[] = [];
    render(
      <MemoryRouter>
        <I18nProvider>
          <Duplicates id="c1" current={{ id: "c1", name: "Ann Lee", email: "ann@acme.com", jobTitle: null, leadSource: "web" }} onChange={(c) => seen.push(c)} />
        </I18nProvider>
      </MemoryRouter>,
    );
    expect(await screen.findByText(/same email, same name and email domain/)).toBeTruthy();
    // The fields that differ (not the lead source the twin lacks), one taken from the twin.
    fireEvent.click(screen.getByRole("button", { name: "Compare with LEE, Ann" }));
    const rows = screen.getAllByRole("row").slice(1).map((r) => r.querySelector("th")?.textContent);
    expect(rows).toEqual(["Name", "Email", "Job title"]);
    fireEvent.click(screen.getByLabelText("ann+crm@acme.com"));
    fireEvent.click(screen.getByRole("button", { name: "Merge LEE, Ann into this contact" }));
    expect(await screen.findByText(/LEE, Ann is merged into this contact/)).toBeTruthy();
    expect(calls.find((c) => c.url === "/api/contacts/c1/merge")?.body).toEqual({ mergeIds: ["c2"], fields: { email: "c2" } });
    expect(seen).toEqual([{ id: "c1", name: "Ann Lee", jobTitle: "CTO" }]);
    fireEvent.click(screen.getByRole("button", { name: "Undo the merge" }));
    await waitFor(() => expect(calls.some((c) => c.url === "/api/contacts/merges/m1/undo")).toBe(true));
    expect(await screen.findByText(/same email/)).toBeTruthy();
    expect(seen).toHaveLength(2);
  });
});
