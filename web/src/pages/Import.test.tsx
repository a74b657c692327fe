import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { I18nProvider } from "../i18n";
import { Import } from "./Import";

afterEach(() => {
  cleanup();
  vi.unstubAllGlobals();
});

function answer(body: unknown, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

const JOB = {
  id: "j1",
  kind: "contacts",
  status: "uploaded",
  fileName: "people.csv",
  format: "csv",
  delimiter: ";",
  encoding: "UTF-8",
  headers: ["Full name", "E-mail", "Shoe size"],
  mapping: ["name", "email", "customFields.shoeSize"],
  matchBy: "email",
  dryRun: false,
  totalRows: 2,
  rowsDone: 0,
  created: 0,
  updated: 0,
  unchanged: 0,
  failed: 0,
  batches: 0,
  ownerId: "u1",
  startedRows: 0,
  attempts: 0,
  createdAt: "2026-12-05T10:00:00Z",
  updatedAt: "2026-12-05T10:00:00Z",
  version: 1,
  progress: { percent: 0 },
};

describe("Import", () => {
  it("reads a file, lets the mapping change, runs the import and follows it to its end", async () => {
    const calls: { method: string; url: string; body: unknown }[] = [];
    let polls = 0;
    vi.stubGlobal(
      "fetch",
      vi.fn(async (url: string, init: RequestInit = {}) => {
        const method = init.method ?? "GET";
        const body = typeof init.body === "string" ? (JSON.parse(init.body) as unknown) : init.body;
        calls.push({ method, url, body });
        if (method === "POST" && url.startsWith("/api/imports?")) {
          return answer({ job: JOB, preview: [["Ann Lee", "ann@example.com", "38"]], fields: ["name", "email", "phoneNumber"] }, 201);
        }
        if (url.endsWith("/start")) return answer({ ...JOB, status: "queued" }, 202);
        polls += 1;
        const done = polls > 1;
        return answer({
          ...JOB,
          status: done ? "completed" : "running",
          rowsDone: done ? 2 : 1,
          created: done ? 1 : 0,
          failed: done ? 1 : 0,
          batches: done ? 1 : 0,
          progress: { percent: done ? 100 : 50, rowsPerSecond: 10, etaSeconds: 1 },
        });
      }),
    );
    render(
      <I18nProvider>
        <Import />
      </I18nProvider>,
    );
    const file = new File(["Full name;E-mail;Shoe size\nAnn Lee;ann@example.com;38\n"], "people.csv", { type: "text/csv" });
    fireEvent.change(screen.getByLabelText("CSV or XLSX file"), { target: { files: [file] } });
    fireEvent.click(screen.getByRole("button", { name: "Read the file" }));
    expect(await screen.findByText("2 rows in people.csv (UTF-8).")).toBeTruthy();
    const upload = calls.find((c) => c.method === "POST" && c.url.startsWith("/api/imports?"));
    expect(upload?.url).toBe("/api/imports?kind=contacts");
    expect(upload?.body).toBeInstanceOf(FormData);
    // The suggestion is shown, a custom field kept among the choices; one column left out.
    const shoe = screen.getByLabelText("Field for the column Shoe size") as HTMLSelectElement;
    expect(shoe.value).toBe("customFields.shoeSize");
    fireEvent.change(shoe, { target: { value: "" } });
    fireEvent.click(screen.getByRole("button", { name: "Start" }));
    expect(await screen.findByText("Import completed.", {}, { timeout: 3000 })).toBeTruthy();
    expect(screen.getByText("2 of 2 rows: 1 created, 0 updated, 0 unchanged, 1 failed.")).toBeTruthy();
    const start = calls.find((c) => c.url === "/api/imports/j1/start");
    expect(start?.body).toEqual({ mapping: ["name", "email", null], matchBy: "email", dryRun: false });
    await waitFor(() => expect(screen.getByRole("button", { name: "Download each row's outcome" })).toBeTruthy());
  });
});
