// The web app end to end in a real browser: Debian's chromium driven by playwright-core,
// against a real crm-server on a fresh SQLite file.
//
//   node e2e/run.mjs path/to/crm-server
//
// Environment: CRM_E2E_CHROMIUM (default /usr/bin/chromium), CRM_E2E_ARTIFACTS (where
// screenshots go; default ./e2e-artifacts). Exits non-zero on the first failure.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { assert, freePort, waitFor } from "./lib.mjs";
import { startIdp } from "./idp.mjs";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const server = process.argv[2];
if (!server) throw new Error("usage: node e2e/run.mjs path/to/crm-server");
const artifacts = path.resolve(process.env.CRM_E2E_ARTIFACTS ?? "e2e-artifacts");
mkdirSync(artifacts, { recursive: true });

/** The text parts of a raw email, decoded (quoted-printable or base64). */
function textOf(raw) {
  const decoded = [];
  for (const part of raw.split(/\r?\n--[^\r\n]+/)) {
    const [head, ...rest] = part.split(/\r?\n\r?\n/);
    const body = rest.join("\n\n");
    if (/content-transfer-encoding:\s*base64/i.test(head)) decoded.push(Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8"));
    else if (/content-transfer-encoding:\s*quoted-printable/i.test(head))
      decoded.push(
        Buffer.from(
          body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16))),
          "latin1",
        ).toString("utf8"),
      );
    else decoded.push(body);
  }
  return decoded.join("\n");
}

const dir = mkdtempSync(path.join(tmpdir(), "crm-web-e2e-"));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const ADMIN_PASSWORD = "correct horse battery staple";
const made = spawnSync(server, ["create-admin", "--username", "admin", "--email", "admin@example.com", "--password", ADMIN_PASSWORD], {
  cwd: dir,
  env: { ...process.env, CRM_LOG: "warn" },
  stdio: ["ignore", "ignore", "inherit"],
});
assert(made.status === 0, "crm-server create-admin");
// The demo data (5,000 contacts, 2,000 deals, …) for the admin's screens and their timings.
const seeded = spawnSync(server, ["seed-demo"], { cwd: dir, env: { ...process.env, CRM_LOG: "warn" }, stdio: ["ignore", "ignore", "inherit"] });
assert(seeded.status === 0, "crm-server seed-demo");
// An OpenID Connect provider on 127.0.0.1 for the sign-in page's "Continue with Local ID".
const idp = await startIdp({
  port: await freePort(),
  clientId: "crm-web",
  redirectUri: `${base}/oauth/callback`,
  person: { sub: "olivia-1", email: "olivia@example.com", name: "Olivia Park" },
});
const proc = spawn(server, ["--bind", `127.0.0.1:${port}`], {
  cwd: dir,
  env: {
    ...process.env,
    CRM_PUBLIC_URL: base,
    CRM_MAIL_DIR: path.join(dir, "mail"),
    CRM_LOG: "warn",
    CRM_OIDC_ISSUER: idp.issuer,
    CRM_OIDC_NAME: "localid",
    CRM_OIDC_CLIENT_IDS: "crm-web",
    CRM_OIDC_LABEL: "Local ID",
  },
  stdio: ["ignore", "ignore", "inherit"],
});
let browser;
let page;
const timings = {};
try {
  await waitFor(async () => fetch(`${base}/health`).then((r) => r.ok).catch(() => false), "crm-server", 30_000);

  // The server's side: the app at /, its caching and its policy.
  const index = await fetch(`${base}/contacts`);
  assert(index.status === 200, "/contacts serves the app");
  assert(index.headers.get("cache-control") === "no-cache", "index.html is revalidated");
  const csp = index.headers.get("content-security-policy") ?? "";
  assert(csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"), `a CSP without unsafe-inline: ${csp}`);
  const html = await index.text();
  const asset = html.match(/\/assets\/[^"]+\.js/)?.[0];
  assert(asset, "index.html names its script");
  const js = await fetch(`${base}${asset}`);
  assert(js.headers.get("cache-control")?.includes("immutable"), "hashed assets are immutable");
  const missing = await fetch(`${base}/assets/nope-123.js`);
  assert(missing.status === 404, "a missing asset is a 404");
  const api404 = await fetch(`${base}/api/nope`);
  assert((api404.headers.get("content-type") ?? "").includes("problem+json"), "the API keeps its 404");

  browser = await chromium.launch({ executablePath: process.env.CRM_E2E_CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  page = await browser.newPage({ locale: "en-GB" });
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  async function axe(name) {
    // Evaluated through the DevTools protocol: the page's CSP (rightly) refuses an
    // injected inline script.
    await page.evaluate(AXE);
    const result = await page.evaluate(async () => {
      const r = await axe.run(document, { resultTypes: ["violations"] });
      return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
    });
    const bad = result.filter((v) => v.impact === "serious" || v.impact === "critical");
    assert(bad.length === 0, `${name}: accessibility violations ${JSON.stringify(bad)}`);
    await page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
  }

  // Third-party sign-in: the button the server's OIDC provider gives the sign-in page
  // leads to the provider's consent page; a cancel comes back as the provider's refusal,
  // a consent signs in a new account made from the ID token (its nonce checked).
  await page.goto(`${base}/login`);
  await page.getByRole("button", { name: "Continue with Local ID" }).click();
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.getByText("The provider did not sign you in (access_denied).").waitFor();
  await axe("oauth-denied");
  await page.getByRole("link", { name: "Sign in" }).click();
  await page.getByRole("button", { name: "Continue with Local ID" }).click();
  await page.getByRole("button", { name: "Continue as olivia@example.com" }).click();
  await page.getByText("Signed in as olivia").waitFor();
  assert(!page.url().includes("id_token"), `the token left the address bar: ${page.url()}`);
  assert(idp.served.tokens === 1, "one ID token issued");
  // The answer replayed (a back button, a shared link) is not a second sign-in.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("button", { name: "Sign in" }).waitFor();
  await page.goto(`${base}/oauth/callback#id_token=x.y.z&state=forged`);
  await page.getByText("This sign-in was not started from this browser").waitFor();

  // Register; a field error is shown at its field.
  let t0 = Date.now();
  await page.goto(`${base}/register`);
  await page.getByLabel("User name").waitFor();
  timings.firstPaintMs = Date.now() - t0;
  await axe("register");
  await page.getByLabel("User name").fill("ann");
  await page.getByLabel("Email").fill("not-an-email");
  await page.getByLabel("Password").fill("correct horse battery staple");
  await page.getByRole("button", { name: "Create an account" }).click();
  const emailField = page.getByLabel("Email");
  await waitFor(async () => (await emailField.getAttribute("aria-invalid")) === "true", "the email field error");
  await axe("register-error");
  await emailField.fill("ann@example.com");
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByText("follow the link we sent to ann@example.com").waitFor();

  // The emailed link opens the confirmation page, which confirms.
  const mailDir = path.join(dir, "mail");
  const link = await waitFor(() => {
    let files = [];
    try {
      files = readdirSync(mailDir);
    } catch {
      return null;
    }
    for (const f of files) {
      const text = textOf(readFileSync(path.join(mailDir, f), "utf8"));
      const m = text.match(/http:\/\/127\.0\.0\.1:\d+\/verify-email\?token=[A-Za-z0-9_-]+/);
      if (m) return m[0];
    }
    return null;
  }, "the confirmation email", 30_000);
  await page.goto(link);
  await page.getByText("Your address is confirmed").waitFor();
  await axe("verify-email");

  // Sign in: a wrong password is refused, the right one opens the contacts.
  await page.goto(`${base}/login`);
  await axe("sign-in");
  await page.getByLabel("User name or email").fill("ann@example.com");
  await page.getByLabel("Password").fill("wrong password entirely");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").waitFor();
  await page.getByLabel("Password").fill("correct horse battery staple");
  t0 = Date.now();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Signed in as ann").waitFor();
  await page.getByRole("heading", { name: "Contacts" }).waitFor();
  await page.getByText("No contacts yet.").waitFor();
  timings.signInToContactsMs = Date.now() - t0;
  await axe("contacts");

  const call = async (method, p, token, body) => {
    const r = await fetch(`${base}${p}`, {
      method,
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    assert(r.ok, `${method} ${p}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const admin = (await call("POST", "/api/auth/login", null, { username: "admin", password: ADMIN_PASSWORD })).accessToken;

  // A contact: a field error at its field, created, changed meanwhile by the admin (a
  // version conflict, overwritten), deleted and restored, found by search.
  await page.getByRole("link", { name: "New contact" }).click();
  await page.getByLabel("Name").fill("Ann Lee");
  await page.getByLabel("Email").fill("ann-at-acme");
  await page.getByRole("button", { name: "Save" }).click();
  await waitFor(async () => (await page.getByLabel("Email").getAttribute("aria-invalid")) === "true", "the email error");
  await axe("contact-error");
  await page.getByLabel("Email").fill("ann.lee@acme.com");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: "Ann Lee" }).waitFor();
  const contactId = page.url().split("/").pop();
  await call("PATCH", `/api/contacts/${contactId}`, admin, { phoneNumber: "+33 1 23 45 67 89" });
  await page.getByLabel("Job title").fill("Buyer");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Someone else changed this contact").waitFor();
  await axe("contact-conflict");
  await page.getByRole("button", { name: "Overwrite with mine" }).click();
  await page.getByText("Saved.").waitFor();
  const overwritten = await call("GET", `/api/contacts/${contactId}`, admin);
  assert(overwritten.jobTitle === "Buyer" && overwritten.version === 3, `overwritten: ${JSON.stringify(overwritten)}`);
  // A user deletes; restoring is for managers and admins (the standard policy).
  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByText("This contact is deleted.").waitFor();
  await page.getByText("A manager or an admin can restore it.").waitFor();
  await axe("contact-deleted");
  await call("POST", `/api/contacts/${contactId}/restore`, admin);
  await page.reload();
  await page.getByRole("heading", { name: "Ann Lee" }).waitFor();
  assert((await page.getByText("This contact is deleted.").count()) === 0, "restored");
  await page.getByRole("link", { name: "Back to the list" }).click();
  await page.getByRole("searchbox", { name: "Search" }).fill("Lee");
  await page.getByRole("searchbox", { name: "Search" }).press("Enter");
  await page.getByRole("link", { name: "Ann Lee" }).waitFor();
  await axe("contacts-list");

  // A task assigned by the admin: the badge counts it, the notifications page lists it,
  // reading it clears the badge.
  const ann = (await call("GET", "/api/users?q=ann", admin)).data.find((u) => u.username === "ann");
  await call("POST", "/api/tasks", admin, { name: "Call the Lees", assignedUser: ann.id });
  // The server's worker writes it within a second or two; the page reads the count on load.
  const annToken = await page.evaluate(() => JSON.parse(localStorage.getItem("crm-rs.tokens")).accessToken);
  const notes = () => call("GET", "/api/notifications", annToken);
  await waitFor(async () => (await notes()).data.some((n) => n.title === "Task assigned to you: Call the Lees"), "the notification");
  const unread = (await call("GET", "/api/notifications/unread-count", annToken)).count;
  // The admin's change to ann's contact and its restore told her too (record.changed).
  assert(unread === 3, `3 unread (the task, the change, the restore): ${unread}`);
  await page.reload();
  await page.getByText("3 unread").waitFor();
  await page.getByRole("link", { name: /Notifications/ }).click();
  await page.getByText("Task assigned to you: Call the Lees").waitFor();
  await axe("notifications");
  await page.getByRole("button", { name: "Mark read" }).first().click();
  await page.getByText("2 unread").waitFor();
  await page.getByRole("button", { name: "Mark all read" }).click();
  await waitFor(async () => (await page.getByText(/\d unread/).count()) === 0, "the badge to clear");

  // The pipeline: a deal dragged from Prospecting to Proposal (its history shows the
  // move); a drag the server refuses (the deal changed meanwhile) is undone.
  const deal = await call("POST", "/api/deals", annToken, { name: "Lee renewal", amount: 1250000, currency: "EUR" });
  const pilot = await call("POST", "/api/deals", annToken, { name: "Acme pilot", amount: 300000, currency: "EUR" });
  await page.getByRole("link", { name: "Pipeline" }).click();
  const column = (stage) => page.locator(`section.column[data-stage="${stage}"]`);
  const card = (name) => page.locator(`li.card[data-deal="${name}"]`);
  await column("prospecting").locator('li.card[data-deal="Lee renewal"]').waitFor();
  await column("prospecting").getByText("€15,500.00").waitFor();
  async function drag(name, stage) {
    const from = await card(name).locator(".handle").boundingBox();
    const to = await column(stage).boundingBox();
    await page.mouse.move(from.x + 10, from.y + 10);
    await page.mouse.down();
    const steps = 12;
    for (let i = 1; i <= steps; i++) {
      await page.mouse.move(from.x + 10 + ((to.x + to.width / 2 - from.x - 10) * i) / steps, from.y + 10 + ((to.y + 60 - from.y - 10) * i) / steps);
    }
    await page.mouse.up();
    // dnd-kit swallows clicks for 50 ms after a drop (the drop's own click); people are slower.
    await page.waitForTimeout(100);
  }
  await drag("Lee renewal", "proposal");
  await column("proposal").locator('li.card[data-deal="Lee renewal"]').waitFor();
  await waitFor(async () => (await call("GET", `/api/deals/${deal.id}`, annToken)).stage === "proposal", "the stored move");
  await card("Lee renewal").getByRole("button", { name: "Lee renewal", exact: true }).click();
  await page.getByText("Prospecting → Proposal").waitFor();
  await axe("pipeline");
  await call("PATCH", `/api/deals/${deal.id}`, admin, { description: "changed meanwhile" });
  await drag("Lee renewal", "negotiation");
  await page.getByText("The move was undone").waitFor();
  await column("proposal").locator('li.card[data-deal="Lee renewal"]').waitFor();
  assert((await call("GET", `/api/deals/${deal.id}`, annToken)).stage === "proposal", "nothing stored");
  // The keyboard way: the card's stage picker.
  await page.reload();
  await page.getByLabel("Move Acme pilot to").selectOption("qualification");
  await column("qualification").locator('li.card[data-deal="Acme pilot"]').waitFor();
  // And dnd-kit's: the handle focused, Space picks the card up, the right arrow carries
  // it to the next column, Space drops it there (a screen reader hears each step; the
  // announcer keeps the latest).
  await card("Acme pilot").locator(".handle").focus();
  await page.keyboard.press("Space");
  // (The sensor listens for the arrows from the next tick on.)
  await page.waitForTimeout(100);
  await page.keyboard.press("ArrowRight");
  await page.getByText("Acme pilot is over Proposal.").waitFor({ state: "attached" });
  await page.keyboard.press("Space");
  await page.getByText("Acme pilot dropped on Proposal.").waitFor({ state: "attached" });
  await column("proposal").locator('li.card[data-deal="Acme pilot"]').waitFor();
  await waitFor(async () => (await call("GET", `/api/deals/${pilot.id}`, annToken)).stage === "proposal", "the keyboard's move stored");
  // Escape puts a picked-up card back where it was.
  await card("Acme pilot").locator(".handle").focus();
  await page.keyboard.press("Space");
  // (The sensor listens for the arrows from the next tick on.)
  await page.waitForTimeout(100);
  await page.keyboard.press("ArrowLeft");
  await page.getByText("Acme pilot is over Qualification.").waitFor({ state: "attached" });
  await page.keyboard.press("Escape");
  await page.getByText("Acme pilot put back.").waitFor({ state: "attached" });
  await column("proposal").locator('li.card[data-deal="Acme pilot"]').waitFor();
  // And the left arrow takes it back a stage.
  await card("Acme pilot").locator(".handle").focus();
  await page.keyboard.press("Space");
  // (The sensor listens for the arrows from the next tick on.)
  await page.waitForTimeout(100);
  await page.keyboard.press("ArrowLeft");
  await page.getByText("Acme pilot is over Qualification.").waitFor({ state: "attached" });
  await page.keyboard.press("Enter");
  await column("qualification").locator('li.card[data-deal="Acme pilot"]').waitFor();
  await waitFor(async () => (await call("GET", `/api/deals/${pilot.id}`, annToken)).stage === "qualification", "moved back a stage");

  // The lists: her task (done from the list), her deals with stage and amount, no
  // companies of hers.
  await page.getByRole("link", { name: "Tasks" }).click();
  await page.getByRole("cell", { name: "Call the Lees", exact: true }).waitFor();
  await axe("tasks");
  await page.getByRole("button", { name: "Mark done: Call the Lees" }).click();
  await page.getByRole("cell", { name: "Done", exact: true }).waitFor();
  await page.getByRole("link", { name: "Deals", exact: true }).click();
  await page.getByRole("cell", { name: "€12,500.00" }).waitFor();
  await page.getByRole("cell", { name: "Qualification", exact: true }).waitFor();
  await axe("deals");
  await page.getByRole("link", { name: "Companies" }).click();
  await page.getByText("Nothing here yet.").waitFor();

  // Tasks handled in bulk: two selected and deleted together.
  await call("POST", "/api/tasks", annToken, { name: "Tidy A", assignedUser: ann.id });
  await call("POST", "/api/tasks", annToken, { name: "Tidy B", assignedUser: ann.id });
  await page.getByRole("link", { name: "Tasks" }).click();
  await page.getByRole("checkbox", { name: "Select Tidy A" }).check();
  await page.getByRole("checkbox", { name: "Select Tidy B" }).check();
  await page.getByText("2 selected").waitFor();
  await axe("tasks-selected");
  await page.getByRole("button", { name: "Delete selected" }).click();
  await page.getByText("Done for 2.").waitFor();
  await waitFor(async () => (await page.getByRole("link", { name: "Tidy A" }).count()) === 0, "the deleted tasks gone");

  // A deal's own page: the board's move is on its timeline; an amount is saved in minor
  // units, and the change joins the timeline naming its field.
  await page.getByRole("link", { name: "Deals", exact: true }).click();
  await page.getByRole("link", { name: "Lee renewal" }).click();
  await page.getByRole("heading", { name: "Lee renewal" }).waitFor();
  await page.getByText("Prospecting → Proposal").waitFor();
  await page.getByLabel("Amount").fill("13000");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  assert((await call("GET", `/api/deals/${deal.id}`, annToken)).amount === 1300000, "the amount in minor units");
  await page.getByText(/Changed: .*amount/).waitFor();
  await axe("deal-page");

  // A company made from its page: a bad domain is shown at its field.
  await page.getByRole("link", { name: "Companies" }).click();
  await page.getByRole("link", { name: "New company" }).click();
  await page.getByLabel("Name").fill("Lee & Co");
  await page.getByLabel("Domain").fill("not a domain");
  await page.getByRole("button", { name: "Save" }).click();
  await waitFor(async () => (await page.getByLabel("Domain").getAttribute("aria-invalid")) === "true", "the domain error");
  await axe("company-error");
  await page.getByLabel("Domain").fill("lee.example");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("heading", { name: "Lee & Co" }).waitFor();
  await page.getByText("Created", { exact: true }).waitFor();
  await axe("company-page");
  // A custom field of the company's own.
  await page.getByRole("button", { name: "Add a custom field" }).click();
  await page.getByLabel("Name of custom field 1").fill("tier");
  await page.getByLabel("Value of tier").fill("gold");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  const leeCo = (await call("GET", `/api/companies?q=${encodeURIComponent("Lee & Co")}`, annToken)).data.find((c) => c.name === "Lee & Co");
  assert(leeCo?.customFields?.tier === "gold", `the custom field stored: ${JSON.stringify(leeCo)}`);

  // The deal's company and contact picked by name; its line items priced as the server
  // prices them, and a line the server refuses named at its cell.
  await page.getByRole("link", { name: "Deals", exact: true }).click();
  await page.getByRole("link", { name: "Lee renewal" }).click();
  await page.getByRole("heading", { name: "Lee renewal" }).waitFor();
  await page.getByRole("combobox", { name: "Company" }).fill("Lee");
  await page.getByRole("option", { name: /^Lee & Co/ }).click();
  await page.getByRole("combobox", { name: "Contacts" }).fill("Ann Lee");
  await page.getByRole("option", { name: /^Ann Lee/ }).first().click();
  await page.getByRole("button", { name: "Remove Ann Lee" }).waitFor();
  await page.getByRole("button", { name: "Add a line" }).click();
  await page.getByLabel("Name (line 1)").fill("Support plan");
  await page.getByLabel("Quantity (line 1)").fill("2");
  await page.getByLabel("Unit price (line 1)").fill("1200");
  await page.getByLabel("Tax % (line 1)").fill("20");
  await page.getByRole("cell", { name: "€2,880.00" }).first().waitFor();
  await page.getByRole("button", { name: "Add a line" }).click();
  await page.getByLabel("Name (line 2)").fill("Onboarding");
  await page.getByLabel("Quantity (line 2)").fill("0");
  await page.getByLabel("Unit price (line 2)").fill("500");
  await page.getByRole("button", { name: "Save" }).click();
  await waitFor(async () => (await page.getByLabel("Quantity (line 2)").getAttribute("aria-invalid")) === "true", "the line's quantity refused at its cell");
  await axe("deal-lines-error");
  await page.getByLabel("Quantity (line 2)").fill("1");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  const lined = await call("GET", `/api/deals/${deal.id}`, annToken);
  assert(
    lined.companyId === leeCo.id && lined.contactIds.length === 1 && lined.products.map((l) => l.total).join() === "288000,50000",
    `the deal's company, contact and lines: ${JSON.stringify(lined)}`,
  );
  await page.reload();
  await waitFor(async () => (await page.getByRole("combobox", { name: "Company" }).inputValue()) === "Lee & Co", "the company by name");
  await page.getByRole("button", { name: "Remove Ann Lee" }).waitFor();
  await page.getByRole("cell", { name: "€3,380.00" }).waitFor();
  await axe("deal-lines");

  // Settings: a deal won by daily digest, saved and read back after a reload.
  await page.getByRole("link", { name: "Settings" }).click();
  const wonByEmail = page.getByLabel("Your deal won — Email");
  await wonByEmail.selectOption("digest");
  await page.getByLabel("Digest hour").selectOption("7");
  await page.getByLabel("Theme").selectOption("dark");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Saved.").waitFor();
  assert((await page.getAttribute("html", "data-theme")) === "dark", "the dark theme applies");
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert(bg === "rgb(21, 24, 29)", `a dark page: ${bg}`);
  await axe("settings");
  await page.reload();
  await waitFor(async () => (await page.getByLabel("Your deal won — Email").inputValue()) === "digest", "the saved digest");
  const stored = await call("GET", `/api/users/${ann.id}/settings`, admin);
  assert(stored.notificationPreferences["deal.won"].email === "digest" && stored.digestHour === 7, `stored: ${JSON.stringify(stored)}`);

  // A reload keeps the session; Arabic turns the page right to left.
  await page.goto(`${base}/contacts`);
  await page.reload();
  await page.getByText("Signed in as ann").waitFor();
  await page.getByLabel("Language").selectOption("ar");
  await page.getByText("متصل باسم ann").waitFor();
  assert((await page.getAttribute("html", "dir")) === "rtl", "Arabic is right to left");
  await axe("contacts-ar");
  // The choice is kept with ann's settings, so it follows her to another browser.
  await waitFor(async () => (await call("GET", `/api/users/${ann.id}/settings`, admin)).language === "ar", "the language stored");

  // Everything reachable by keyboard: tabbing from the top reaches the sign-out button.
  await page.keyboard.press("Tab");
  let reached = false;
  for (let i = 0; i < 25 && !reached; i++) {
    reached = await page.evaluate(() => document.activeElement?.textContent === "تسجيل الخروج");
    if (!reached) await page.keyboard.press("Tab");
  }
  assert(reached, "the sign-out button is reachable by keyboard");
  await page.keyboard.press("Enter");
  await page.getByRole("button", { name: "تسجيل الدخول" }).waitFor();

  // The admin on the demo data: the contacts screen (5,000 contacts) and the dashboard
  // of eight cards, timed from navigation to content.
  const adminPage = await browser.newPage({ locale: "en-GB" });
  adminPage.on("pageerror", (e) => consoleErrors.push(String(e)));
  const userPage = page;
  page = adminPage; // for axe and the failure screenshot
  await adminPage.goto(`${base}/login`);
  await adminPage.getByLabel("User name or email").fill("admin");
  await adminPage.getByLabel("Password").fill(ADMIN_PASSWORD);
  await adminPage.getByRole("button", { name: "Sign in" }).click();
  await adminPage.getByText("Signed in as admin").waitFor();
  t0 = Date.now();
  await adminPage.goto(`${base}/contacts`);
  await adminPage.locator("tbody tr").nth(24).waitFor();
  timings.contacts5000Ms = Date.now() - t0;
  // The filter bar (customers only), a sort by a header, a column shown, two rows
  // exported as CSV.
  await adminPage.getByRole("button", { name: "Add a condition" }).click();
  await adminPage.getByLabel("Field of condition 1").selectOption("lifecycleStage");
  await adminPage.getByLabel("Value of condition 1").selectOption("customer");
  await adminPage.getByRole("button", { name: "Apply" }).click();
  const rowTexts = () => adminPage.locator("tbody tr").allInnerTexts();
  await waitFor(async () => {
    const rows = await rowTexts();
    return rows.length > 0 && rows.every((r) => r.includes("Customer"));
  }, "customers only");
  await adminPage.getByRole("button", { name: "Name" }).click();
  await waitFor(async () => (await adminPage.getByRole("columnheader", { name: /Name/ }).getAttribute("aria-sort")) === "ascending", "sorted by name");
  await waitFor(async () => {
    const names = await adminPage.locator("tbody tr td:nth-child(2)").allInnerTexts();
    return names.length > 1 && names.every((n, i) => i === 0 || names[i - 1] <= n);
  }, "names in order");
  await adminPage.getByText("Columns", { exact: true }).click();
  await adminPage.getByRole("checkbox", { name: "Job title" }).check();
  await adminPage.getByRole("columnheader", { name: "Job title" }).waitFor();
  await adminPage.getByText("Columns", { exact: true }).click();
  const firstTwo = (await adminPage.locator("tbody tr td:nth-child(2)").allInnerTexts()).slice(0, 2);
  // (Demo names repeat: the rows are picked by place.)
  await adminPage.locator("tbody tr").nth(0).getByRole("checkbox", { name: `Select ${firstTwo[0]}` }).check();
  await adminPage.locator("tbody tr").nth(1).getByRole("checkbox", { name: `Select ${firstTwo[1]}` }).check();
  await axe("contacts-filtered");
  const [download] = await Promise.all([adminPage.waitForEvent("download"), adminPage.getByRole("button", { name: "Export CSV" }).click()]);
  const csv = readFileSync(await download.path(), "utf8").replace(/^\ufeff/, "").trim().split("\r\n");
  assert(csv[0] === "Name,Email,Phone,Job title,Stage,Owner,Updated", `the CSV header: ${csv[0]}`);
  assert(csv.length === 3 && csv[1].startsWith(firstTwo[0].includes(",") ? '"' : firstTwo[0]), `two rows: ${csv.join(" | ")}`);
  // The whole filtered list, written by the server: every customer, by name, with the
  // API's field names.
  const [whole] = await Promise.all([adminPage.waitForEvent("download"), adminPage.getByRole("button", { name: "Export all as CSV" }).click()]);
  assert(/^contacts-\d{4}-\d{2}-\d{2}\.csv$/.test(whole.suggestedFilename()), `the export's name: ${whole.suggestedFilename()}`);
  const all = readFileSync(await whole.path(), "utf8").trim().split("\r\n");
  const customers = await call("GET", `/api/contacts?filter=${encodeURIComponent("lifecycleStage[eq]:customer")}&count=true&limit=1`, admin);
  assert(all[0].startsWith("id,name,email,phoneNumber,"), `the export's header: ${all[0]}`);
  assert(all.length - 1 === customers.totalCount, `${all.length - 1} rows exported of ${customers.totalCount} customers`);
  assert(all.slice(1).every((r) => r.includes(",customer,")), "customers only");
  const exportedNames = all.slice(1).map((r) => r.split(",")[1]);
  assert(exportedNames.every((n, i) => i === 0 || exportedNames[i - 1] <= n), "sorted by name as shown");
  // A spreadsheet imported through the import screen: read, mapped as suggested (one
  // column left out), run to its end with its progress shown.
  await adminPage.goto(`${base}/import`);
  await adminPage.getByLabel("CSV or XLSX file").setInputFiles({
    name: "people.csv",
    mimeType: "text/csv",
    buffer: Buffer.from("Full name;E-mail;Favourite colour\nImported One;imported.one@example.com;blue\nImported Two;imported.two@example.com;green\n"),
  });
  await adminPage.getByRole("button", { name: "Read the file" }).click();
  await adminPage.getByText("2 rows in people.csv (UTF-8).").waitFor();
  assert((await adminPage.getByLabel("Field for the column E-mail").inputValue()) === "email", "E-mail maps to email");
  await adminPage.getByLabel("Field for the column Favourite colour").selectOption("");
  await axe("import");
  await adminPage.getByRole("button", { name: "Start" }).click();
  await adminPage.getByText("Import completed.").waitFor();
  await adminPage.getByText("2 of 2 rows: 2 created, 0 updated, 0 unchanged, 0 failed.").waitFor();
  const imported = await call("GET", `/api/contacts?filter=${encodeURIComponent("email[eq]:imported.two@example.com")}`, admin);
  assert(imported.data.length === 1 && imported.data[0].name === "Imported Two", "the imported contact");
  assert(Object.keys(imported.data[0].customFields).length === 0, "the column left out stays out");
  // The imported contact's page: a file attached from the picker, a twin found and merged
  // in, the merge undone.
  const two = imported.data[0];
  const twin = await call("POST", "/api/contacts", admin, { name: "TWO, Imported", email: "Imported.Two+news@example.com", jobTitle: "Buyer" });
  await adminPage.goto(`${base}/contacts/${two.id}`);
  await adminPage.getByText("same email, same name and email domain").waitFor();
  await adminPage.getByLabel("Attach files").setInputFiles({ name: "offer.pdf", mimeType: "text/plain", buffer: Buffer.from("%PDF-1.7\n%%EOF\n") });
  await adminPage.getByRole("button", { name: "offer.pdf", exact: true }).waitFor();
  const files = await call("GET", `/api/contacts/${two.id}/attachments`, admin);
  assert(files.data.length === 1 && files.data[0].contentType === "application/pdf", "the type read from the bytes");
  await axe("contact-files-duplicates");
  // The twin's spelling of the name chosen field by field; the empty job title filled.
  await adminPage.getByRole("button", { name: "Compare with TWO, Imported" }).click();
  await adminPage.getByRole("radio", { name: "TWO, Imported" }).check();
  await axe("contact-compare");
  await adminPage.getByRole("button", { name: "Merge TWO, Imported into this contact" }).click();
  await adminPage.getByText("TWO, Imported is merged into this contact").waitFor();
  await adminPage.getByText("No likely duplicates.").waitFor();
  assert((await adminPage.getByLabel("Job title").inputValue()) === "Buyer", "the empty field filled from the twin");
  assert((await adminPage.getByLabel("Name").inputValue()) === "TWO, Imported", "the name chosen from the twin");
  await adminPage.screenshot({ path: path.join(artifacts, "contact-merged.png"), fullPage: true });
  await adminPage.getByRole("button", { name: "Undo the merge" }).click();
  await adminPage.getByText("same email, same name and email domain").waitFor();
  const back = await call("GET", `/api/contacts/${twin.id}`, admin);
  assert(back.name === "TWO, Imported" && !back.deletedAt, "the twin is back");
  assert((await call("GET", `/api/contacts/${two.id}`, admin)).name === "Imported Two", "the survivor's own name again");
  t0 = Date.now();
  await adminPage.goto(`${base}/dashboard`);
  const cards = adminPage.locator("article.dash-card");
  await waitFor(async () => (await cards.count()) === 8, "eight cards");
  await waitFor(
    async () => (await adminPage.locator("article.dash-card canvas, article.dash-card tbody tr").count()) >= 6 + 6,
    "every card drawn",
    20_000,
  );
  await waitFor(async () => (await adminPage.locator("article.dash-card canvas").count()) >= 6, "six charts");
  timings.dashboard8CardsMs = Date.now() - t0;
  const engaged = adminPage.locator('article[data-report="r7_contact_engagement"] tbody th').first();
  await waitFor(async () => (await engaged.textContent()) !== "…", "engaged contacts by name");
  const owners = await adminPage.locator('article[data-report="r3_win_rate_by_owner"] [role="img"]').getAttribute("aria-label");
  assert(owners.includes("demo-"), `owners by name: ${owners}`);
  const pipelineLabel = await adminPage.locator('article[data-report="r1_pipeline_by_stage"] [role="img"]').getAttribute("aria-label");
  assert(pipelineLabel.includes("Prospecting"), `stages by name: ${pipelineLabel}`);
  await axe("dashboard");

  // Fields dragged from the palette onto the builder's zones.
  async function dragField(field, zone) {
    const from = await adminPage.locator(`.chip[data-field="${field}"]`).boundingBox();
    const to = await adminPage.locator(`section.zone[data-zone="${zone}"]`).boundingBox();
    await adminPage.mouse.move(from.x + 8, from.y + 8);
    await adminPage.mouse.down();
    const steps = 12;
    for (let i = 1; i <= steps; i++) {
      await adminPage.mouse.move(from.x + 8 + ((to.x + to.width / 2 - from.x - 8) * i) / steps, from.y + 8 + ((to.y + to.height / 2 - from.y - 8) * i) / steps);
    }
    await adminPage.mouse.up();
    await adminPage.waitForTimeout(100);
  }
  // The report builder: won revenue by industry, built by dragging fields; saved, shared
  // with ann, exported.
  // A screen tall enough to hold the palette and the zones (the mouse drags in view).
  await adminPage.setViewportSize({ width: 1280, height: 1400 });
  await adminPage.getByRole("link", { name: "Reports" }).click();
  await adminPage.getByRole("link", { name: "New report" }).click();
  await adminPage.locator('.chip[data-field="amount_cents"]').waitFor();
  await adminPage.getByRole("checkbox", { name: "companies" }).check();
  await dragField("companies.industry", "groupBy");
  await adminPage.locator('section.zone[data-zone="groupBy"] .item-name', { hasText: "companies.industry" }).waitFor();
  await dragField("amount_cents", "values");
  await adminPage.getByLabel("Function on amount_cents").waitFor();
  await dragField("pipeline_stage", "filters");
  await adminPage.getByLabel("Value of condition 1").selectOption("closed_won");
  await waitFor(async () => (await adminPage.locator(".preview thead th").allInnerTexts()).join(",") === "industry,sum_amount_cents", "the preview's columns");
  await waitFor(async () => (await adminPage.locator(".preview tbody tr").count()) > 1, "the preview's rows");
  await adminPage.locator(".preview canvas").waitFor();
  // The keyboard's way in: a value added from the zone's list, then removed by Enter.
  const previewColumns = async () => (await adminPage.locator(".preview thead th").allInnerTexts()).join(",");
  await adminPage.locator('select[data-zone="values"]').selectOption("*");
  await waitFor(async () => (await previewColumns()) === "industry,sum_amount_cents,count", "a row count added from the list");
  await adminPage.getByRole("button", { name: "Remove Number of rows" }).focus();
  await adminPage.keyboard.press("Enter");
  await waitFor(async () => (await previewColumns()) === "industry,sum_amount_cents", "the row count removed");
  await adminPage.getByLabel("Sort by").selectOption("sum_amount_cents");
  await adminPage.getByLabel("Report name").fill("Won revenue by industry");
  await adminPage.getByRole("button", { name: "Save the report" }).click();
  await adminPage.getByRole("heading", { name: "Won revenue by industry" }).waitFor();
  const reportUrl = adminPage.url();
  assert(/\/reports\/[0-9a-f-]{36}$/.test(reportUrl), `the saved report's page: ${reportUrl}`);
  await adminPage.getByRole("checkbox", { name: "ann", exact: true }).check();
  await adminPage.getByRole("button", { name: "Save the sharing" }).click();
  await adminPage.getByText("Shared.").waitFor();
  await axe("report-builder");
  const [exported] = await Promise.all([adminPage.waitForEvent("download"), adminPage.getByRole("button", { name: "Export CSV" }).click()]);
  const reportCsv = readFileSync(await exported.path(), "utf8").split("\n");
  assert(reportCsv[0] === "industry,sum_amount_cents" && reportCsv.length > 2, `the exported report: ${reportCsv.slice(0, 3).join(" | ")}`);
  const revenues = reportCsv.slice(1).filter(Boolean).map((l) => Number(l.split(",").pop()));
  assert(revenues.every((v, i) => i === 0 || revenues[i - 1] >= v), `sorted by revenue: ${revenues.join(",")}`);

  // The dashboard arranged: a card removed, the saved report added, the funnel dragged
  // first and widened; saved, and the same after a reload.
  await adminPage.getByRole("link", { name: "Dashboard" }).click();
  await waitFor(async () => (await cards.count()) === 8, "eight cards again");
  await adminPage.getByRole("button", { name: "Arrange the cards" }).click();
  await adminPage.getByRole("button", { name: "Remove New customers by month" }).click();
  await adminPage.getByLabel("Add a card").selectOption({ label: "Won revenue by industry" });
  const handle = await adminPage.locator('article[data-report="r4_stage_funnel"] .handle').boundingBox();
  const target = await adminPage.locator('article[data-report="r1_pipeline_by_stage"]').boundingBox();
  await adminPage.mouse.move(handle.x + 5, handle.y + 5);
  await adminPage.mouse.down();
  for (let i = 1; i <= 12; i++) {
    await adminPage.mouse.move(handle.x + 5 + ((target.x + 40 - handle.x - 5) * i) / 12, handle.y + 5 + ((target.y + 40 - handle.y - 5) * i) / 12);
  }
  await adminPage.mouse.up();
  await adminPage.waitForTimeout(100);
  await adminPage.getByRole("button", { name: "Widen Stage funnel" }).click();
  await axe("dashboard-arranging");
  await adminPage.getByRole("button", { name: "Save the layout" }).click();
  await adminPage.getByText("Saved.").waitFor();
  await adminPage.reload();
  await waitFor(async () => (await cards.count()) === 8, "eight cards after the reload");
  const order = await cards.evaluateAll((els) => els.map((e) => e.dataset.report));
  assert(order[0] === "r4_stage_funnel" && !order.includes("r8_customer_acquisition") && /^[0-9a-f-]{36}$/.test(order[7]), `the layout: ${order.join(",")}`);
  assert(((await cards.first().getAttribute("class")) ?? "").includes("wide"), "the funnel is wide");
  await adminPage.locator(`article[data-report="${order[7]}"] canvas`).waitFor();
  await axe("dashboard-arranged");
  // The owner filter applies to every card: one rep's win rate alone, and the saved
  // report's won revenue of that rep's deals only.
  const winRate = adminPage.locator('article[data-report="r3_win_rate_by_owner"] [role="img"]');
  const savedChart = adminPage.locator(`article[data-report="${order[7]}"] [role="img"]`);
  const everyonesRevenue = await savedChart.getAttribute("aria-label");
  await adminPage.getByRole("combobox", { name: "Owner", exact: true }).selectOption({ label: "demo-enterprise-0" });
  await waitFor(async () => {
    const label = (await winRate.getAttribute("aria-label").catch(() => null)) ?? "";
    return label.includes("demo-enterprise-0") && !label.includes("demo-mid-market-0");
  }, "the win rate of one owner");
  await waitFor(async () => {
    const label = await savedChart.getAttribute("aria-label").catch(() => null);
    return label && label !== everyonesRevenue;
  }, "the saved report's card narrowed to one owner");
  await adminPage.getByRole("combobox", { name: "Owner", exact: true }).selectOption({ label: "Everyone" });
  await waitFor(async () => ((await winRate.getAttribute("aria-label").catch(() => null)) ?? "").includes("demo-mid-market-0"), "every owner again");
  await waitFor(async () => (await savedChart.getAttribute("aria-label").catch(() => null)) === everyonesRevenue, "the saved card whole again");
  // The date range applies to every card: the win rate of the deals closed in the first
  // quarter, the saved report's revenue of the deals created in it; cleared, all again.
  const everyonesWinRate = await winRate.getAttribute("aria-label");
  await adminPage.getByLabel("From", { exact: true }).fill("2026-01-01");
  await adminPage.getByLabel("To", { exact: true }).fill("2026-03-31");
  await waitFor(async () => {
    const label = await winRate.getAttribute("aria-label").catch(() => null);
    return label && label !== everyonesWinRate;
  }, "the win rate of the first quarter");
  await waitFor(async () => {
    const label = await savedChart.getAttribute("aria-label").catch(() => null);
    return label && label !== everyonesRevenue;
  }, "the saved report's card over the first quarter");
  await axe("dashboard-range");
  await adminPage.screenshot({ path: path.join(artifacts, "dashboard-range.png") });
  await adminPage.getByLabel("From", { exact: true }).fill("");
  await adminPage.getByLabel("To", { exact: true }).fill("");
  await waitFor(async () => (await winRate.getAttribute("aria-label").catch(() => null)) === everyonesWinRate, "every closed deal again");
  // The README's picture: every card drawn, and ECharts' entry animation over.
  await waitFor(async () => (await cards.locator('[role="status"]').count()) === 0 && (await adminPage.locator("article.dash-card:has(canvas, table)").count()) === 8, "every card drawn");
  await adminPage.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await adminPage.waitForTimeout(1500);
  await adminPage.screenshot({ path: path.join(artifacts, "dashboard-demo.png") });
  // The arranged dashboard shared with ann as a saved dashboard (she opens it below).
  await adminPage.getByRole("button", { name: "Share this dashboard" }).click();
  const sharePanel = adminPage.getByRole("region", { name: "Share this dashboard" });
  await sharePanel.getByLabel("Dashboard name").fill("Sales board");
  await sharePanel.getByRole("checkbox", { name: "ann", exact: true }).check();
  await axe("dashboard-sharing");
  await sharePanel.getByRole("button", { name: "Share this dashboard" }).click();
  await adminPage.getByText("Sales board is shared.").waitFor();
  const board = (await call("GET", "/api/reports/saved?limit=200", admin)).data.find((r) => r.name === "Sales board");
  assert(board?.cards?.length === 8 && board.cards[0].report === "r4_stage_funnel" && board.sharedWith.users.includes(ann.id), `the saved dashboard: ${JSON.stringify(board)}`);
  await adminPage.goto(reportUrl);
  await adminPage.locator(".preview canvas").waitFor();
  await adminPage.screenshot({ path: path.join(artifacts, "report-builder-demo.png"), fullPage: true });

  // A campaign: a template written and previewed for a contact, a segment built from a
  // condition (its size shown), the campaign sent now; its figures come in as it goes
  // out, and the email itself arrives with its unsubscribe link.
  await adminPage.getByRole("link", { name: "Campaigns" }).click();
  await adminPage.getByRole("heading", { name: "Campaigns" }).waitFor();
  await adminPage.getByText("No campaigns yet.").waitFor();
  await axe("campaigns");
  await adminPage.getByRole("link", { name: "Templates" }).click();
  await adminPage.getByRole("link", { name: "New template" }).click();
  await adminPage.getByLabel("Name", { exact: true }).fill("December news");
  await adminPage.getByLabel("Subject", { exact: true }).fill("News for {{ contact.first_name }}");
  await adminPage.getByLabel("Design (MJML)").fill("<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ contact.nickname }}</mj-text></mj-column></mj-section></mj-body></mjml>");
  await adminPage.getByRole("button", { name: "Create the template" }).click();
  // An unknown placeholder is named at its field.
  await waitFor(async () => (await adminPage.getByLabel("Design (MJML)").getAttribute("aria-invalid")) === "true", "the unknown placeholder");
  await axe("template-error");
  await adminPage
    .getByLabel("Design (MJML)")
    .fill('<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ contact.first_name }}, our December news.</mj-text><mj-button href="https://example.com/news">Read it</mj-button></mj-column></mj-section></mj-body></mjml>');
  await adminPage.getByRole("button", { name: "Create the template" }).click();
  await adminPage.getByRole("heading", { name: "December news" }).waitFor();
  await adminPage.getByRole("combobox", { name: "Preview for the contact" }).fill("Ann Lee");
  await adminPage.getByRole("option", { name: /^Ann Lee/ }).first().click();
  await adminPage.getByRole("button", { name: "Preview", exact: true }).click();
  await adminPage.getByText("News for Ann").waitFor();
  const previewed = await adminPage.frameLocator('iframe[title="The email as sent"]').getByText("Hello Ann, our December news.").textContent();
  assert(previewed?.includes("December news"), "the preview shows the email");
  await axe("template-preview");
  await adminPage.getByRole("link", { name: "Segments" }).click();
  await adminPage.getByRole("link", { name: "New segment" }).click();
  await adminPage.getByLabel("Name", { exact: true }).fill("Ann only");
  await adminPage.getByRole("button", { name: "Add a condition" }).click();
  await adminPage.getByLabel("Field of condition 1").selectOption({ label: "Email" });
  await adminPage.getByLabel("Test of condition 1").selectOption("contains");
  await adminPage.getByLabel("Value of condition 1").fill("ann.lee@acme.com");
  await waitFor(async () => (await adminPage.getByLabel("Contact filter").inputValue()).includes("ann.lee@acme.com"), "the filter written");
  await adminPage.getByRole("button", { name: "Create the segment" }).click();
  await adminPage.getByText("1 contacts with an address").waitFor();
  await axe("segment");
  await adminPage.getByRole("link", { name: "Campaigns" }).first().click();
  await adminPage.getByRole("link", { name: "New campaign" }).click();
  await adminPage.getByLabel("Name", { exact: true }).fill("December");
  await adminPage.getByLabel("Template").selectOption({ label: "December news" });
  await adminPage.getByRole("group", { name: "Send to the contacts of" }).getByLabel("Ann only").check();
  await adminPage.getByRole("button", { name: "Create the campaign" }).click();
  await adminPage.getByRole("button", { name: "Send now" }).click();
  await adminPage.getByText("Sending has started.").waitFor();
  await waitFor(async () => (await adminPage.locator(".state").first().textContent()) === "Sent", "the campaign sent", 60_000);
  await adminPage.getByRole("cell", { name: "ann.lee@acme.com" }).waitFor();
  await axe("campaign-sent");
  const campaignMail = await waitFor(() => {
    for (const f of readdirSync(mailDir)) {
      const raw = readFileSync(path.join(mailDir, f), "utf8");
      if (/^Subject: News for Ann/m.test(raw) && /^To: .*ann\.lee@acme\.com/im.test(raw)) return raw;
    }
    return null;
  }, "the campaign's email", 30_000);
  assert(/^List-Unsubscribe: <http:\/\/127\.0\.0\.1:\d+\/u\//m.test(campaignMail), "a one-click unsubscribe header");
  assert(textOf(campaignMail).includes("Hello Ann, our December news."), "the email says what the preview said");

  // Billing: a product in the catalogue; a quote of ann's deal, sent, accepted and turned
  // into an invoice; the invoice issued (numbered), paid in part, emailed with its PDF.
  await adminPage.getByRole("link", { name: "Billing" }).click();
  await adminPage.getByRole("heading", { name: "Invoices" }).waitFor();
  await adminPage.getByRole("link", { name: "Products" }).click();
  await adminPage.getByLabel("SKU").fill("SUP-1");
  await adminPage.getByLabel("Name", { exact: true }).fill("Support plan");
  await adminPage.getByLabel("Unit price").fill("1200");
  await adminPage.getByLabel("Tax %").fill("20");
  await adminPage.getByRole("button", { name: "Add the product" }).click();
  await adminPage.getByRole("cell", { name: "Support plan", exact: true }).waitFor();
  await axe("products");
  await adminPage.goto(`${base}/deals/${deal.id}`);
  await adminPage.getByRole("button", { name: "Make a quote of this deal" }).click();
  await adminPage.getByRole("heading", { name: "Draft" }).waitFor();
  await adminPage.getByLabel("Name (line 1)").waitFor();
  await axe("quote-draft");
  await adminPage.getByRole("button", { name: "Send the quote (numbers it)" }).click();
  await adminPage.getByRole("heading", { name: /^QUO-\d{4}-\d+$/ }).waitFor();
  await adminPage.getByRole("button", { name: "Accepted by the customer" }).click();
  await adminPage.getByText("Accepted.").waitFor();
  await adminPage.getByRole("button", { name: "Invoice this quote" }).click();
  await adminPage.getByRole("button", { name: "Issue the invoice" }).waitFor();
  // One more line, from the catalogue.
  await adminPage.getByRole("button", { name: "Add a line" }).click();
  const lastLine = await adminPage.locator(".line-items tbody tr").count();
  await adminPage.getByLabel(`Product (line ${lastLine})`).selectOption({ label: "SUP-1 · Support plan" });
  await waitFor(async () => (await adminPage.getByLabel(`Unit price (line ${lastLine})`).inputValue()) === "1200", "the product's price");
  await adminPage.getByLabel("Payment terms").selectOption("net_30");
  await adminPage.getByRole("button", { name: "Save", exact: true }).click();
  await adminPage.getByText("Saved.").waitFor();
  await adminPage.getByRole("button", { name: "Issue the invoice" }).click();
  const number = adminPage.getByRole("heading", { name: /^INV-\d{4}-\d{6}$/ });
  await number.waitFor();
  const invoiceId = adminPage.url().split("/").pop();
  const issued = await call("GET", `/api/invoices/${invoiceId}`, admin);
  assert(issued.status === "issued" && issued.lines.length >= 2 && issued.total > 0, `issued: ${JSON.stringify(issued)}`);
  await axe("invoice-issued");
  await adminPage.getByLabel("Amount", { exact: true }).fill("100");
  await adminPage.getByLabel("Reference").fill("BANK-42");
  await adminPage.getByRole("button", { name: "Record a payment" }).click();
  await adminPage.getByText("The payment is recorded.").waitFor();
  await adminPage.getByText("Partly paid").waitFor();
  await adminPage.getByRole("cell", { name: "BANK-42" }).waitFor();
  assert((await call("GET", `/api/invoices/${invoiceId}`, admin)).balance === issued.total - 10000, "the balance after the payment");
  // The customer's pay link: shown to copy, and it opens the invoice without signing in.
  await adminPage.getByRole("button", { name: "Get the pay link" }).click();
  const payUrl = await adminPage.getByLabel("Pay link").inputValue();
  assert(payUrl.startsWith(`${base}/pay/`), `the pay link: ${payUrl}`);
  await axe("invoice-pay-link");
  const payer = await browser.newPage({ locale: "en-GB" });
  await payer.goto(payUrl);
  await payer.getByRole("heading", { name: `Invoice ${issued.number}` }).waitFor();
  await payer.close();
  const pdfDownload = adminPage.waitForEvent("download");
  await adminPage.getByRole("button", { name: "Download the PDF" }).click();
  const pdfFile = await pdfDownload;
  assert(/^INV-\d{4}-\d{6}\.pdf$/.test(pdfFile.suggestedFilename()), `the PDF's name: ${pdfFile.suggestedFilename()}`);
  const pdfBytes = readFileSync(await pdfFile.path());
  assert(pdfBytes.subarray(0, 5).toString() === "%PDF-", "a PDF");
  await adminPage.getByLabel("To", { exact: true }).fill("ann.lee@acme.com");
  await adminPage.getByRole("button", { name: "Email it" }).click();
  await adminPage.getByText("On its way, with the PDF attached.").waitFor();
  const invoiceMail = await waitFor(() => {
    for (const f of readdirSync(mailDir)) {
      const raw = readFileSync(path.join(mailDir, f), "utf8");
      if (raw.includes(issued.number) && /application\/pdf/.test(raw)) return raw;
    }
    return null;
  }, "the invoice's email", 30_000);
  assert(/^To: .*ann\.lee@acme\.com/im.test(invoiceMail), "the invoice mailed to the customer");
  await axe("invoice-paid-in-part");
  // The seller printed on documents, kept; a monthly subscription whose first period is
  // billed at once.
  await adminPage.getByRole("link", { name: "Settings", exact: true }).last().click();
  await adminPage.getByRole("heading", { name: "Settings" }).waitFor();
  await adminPage.getByLabel("Name", { exact: true }).fill("Northwind SAS");
  await adminPage.getByLabel("Address").fill("1 rue de la Paix\n75002 Paris");
  await adminPage.getByLabel("Tax id (VAT)").fill("FR40303265045");
  await adminPage.getByRole("button", { name: "Save", exact: true }).click();
  await adminPage.getByText("Saved.").waitFor();
  const billingSettings = await call("GET", "/api/billing/settings", admin);
  assert(
    billingSettings.seller.name === "Northwind SAS" && billingSettings.seller.addressLines.join("|") === "1 rue de la Paix|75002 Paris",
    `the seller stored: ${JSON.stringify(billingSettings.seller)}`,
  );
  await axe("billing-settings");
  await adminPage.getByRole("link", { name: "Subscriptions" }).click();
  await adminPage.getByRole("link", { name: "New subscription" }).click();
  await adminPage.getByLabel("Name", { exact: true }).fill("Support, monthly");
  await adminPage.getByRole("combobox", { name: "Company" }).fill("Lee");
  await adminPage.getByRole("option", { name: /^Lee & Co/ }).click();
  await adminPage.getByRole("button", { name: "Add a line" }).click();
  await adminPage.getByLabel("Product (line 1)").selectOption({ label: "SUP-1 · Support plan" });
  await adminPage.getByRole("button", { name: "Create the subscription" }).click();
  await adminPage.getByRole("heading", { name: "Support, monthly" }).waitFor();
  await adminPage.getByText("Next invoice").waitFor();
  await axe("subscription");
  await adminPage.getByRole("link", { name: "Subscriptions" }).click();
  await adminPage.getByRole("button", { name: "Bill what is due now" }).click();
  await adminPage.getByText("Every period due is billed.").waitFor();
  await waitFor(async () => (await adminPage.locator("tbody tr").first().locator("td").nth(4).textContent()) === "1", "one period billed");

  // The admin screens: a team made, a manager invited into it (the invitation is mailed),
  // suspended with a reason and let back in; the audit log's chain checked.
  await adminPage.getByRole("link", { name: "Admin", exact: true }).click();
  await adminPage.getByRole("link", { name: "Teams" }).click();
  await adminPage.getByRole("link", { name: "New team" }).click();
  await adminPage.getByLabel("Name").fill("East");
  await adminPage.getByRole("button", { name: "Save" }).click();
  await adminPage.getByRole("heading", { name: "East" }).waitFor();
  await axe("admin-team");
  await adminPage.getByRole("link", { name: "Users", exact: true }).click();
  await adminPage.getByRole("cell", { name: "ann", exact: true }).waitFor();
  await axe("admin-users");
  await adminPage.getByRole("link", { name: "Invite a user" }).click();
  await adminPage.getByLabel("User name").fill("cho");
  await adminPage.getByLabel("Email").fill("cho@example.com");
  await adminPage.getByLabel("Role").selectOption("manager");
  await adminPage.getByLabel("Team").selectOption({ label: "East" });
  await adminPage.getByRole("button", { name: "Send the invitation" }).click();
  await adminPage.getByRole("heading", { name: "cho" }).waitFor();
  await adminPage.getByText("cho@example.com · Not confirmed").waitFor();
  await adminPage.getByLabel("Reason").fill("on leave");
  await adminPage.getByRole("button", { name: "Suspend", exact: true }).click();
  await adminPage.getByText(/Suspended.*on leave/).waitFor();
  await axe("admin-user");
  await adminPage.getByRole("button", { name: "Lift the suspension" }).click();
  await waitFor(async () => (await adminPage.getByText(/on leave/).count()) === 0, "the suspension lifted");
  const cho = (await call("GET", "/api/users?q=cho", admin)).data.find((u) => u.username === "cho");
  assert(cho.role === "manager" && cho.status !== "suspended", `cho: ${JSON.stringify(cho)}`);
  await adminPage.getByRole("link", { name: "Audit log" }).click();
  await adminPage.getByRole("button", { name: "Check the chain" }).click();
  await adminPage.getByText(/The chain is intact: \d+ events checked\./).waitFor();
  await axe("admin-audit");

  // ann opens the report shared with her: on her own deals (none won yet), hers to copy.
  const annPage = await browser.newPage({ locale: "en-GB" });
  annPage.on("pageerror", (e) => consoleErrors.push(String(e)));
  page = annPage;
  await call("PATCH", `/api/users/${ann.id}/settings`, admin, { language: "en" });
  await annPage.goto(`${base}/login`);
  await annPage.getByLabel("User name or email").fill("ann");
  await annPage.getByLabel("Password").fill("correct horse battery staple");
  await annPage.getByRole("button", { name: "Sign in" }).click();
  await annPage.getByText("Signed in as ann").waitFor();
  await annPage.getByRole("link", { name: "Reports" }).click();
  await annPage.getByRole("link", { name: "Won revenue by industry" }).click();
  await annPage.getByRole("heading", { name: "Won revenue by industry" }).waitFor();
  await annPage.getByText("0 rows").waitFor();
  await annPage.getByRole("button", { name: "Save as my copy" }).waitFor();
  await axe("report-shared");
  // The dashboard admin shared: opened from the list of dashboards, every card drawn on
  // what ann may read, then taken as her own.
  await annPage.getByRole("link", { name: "Dashboard" }).click();
  await annPage.getByLabel("Dashboards").selectOption({ label: "Sales board (shared with you)" });
  await annPage.getByRole("heading", { name: "Sales board" }).waitFor();
  const annCards = annPage.locator("article.dash-card");
  await waitFor(async () => (await annCards.count()) === 8, "the shared dashboard's eight cards");
  assert((await annCards.evaluateAll((els) => els.map((e) => e.dataset.report))).join(",") === board.cards.map((c) => c.report).join(","), "in the shared order");
  await annPage.locator(`article[data-report="${board.cards[7].report}"]`).getByText("No data").waitFor();
  await axe("dashboard-shared");
  await annPage.getByRole("button", { name: "Use as my dashboard" }).click();
  await annPage.getByText("Sales board is now your dashboard.").waitFor();
  const annSettings = await call("GET", `/api/users/${ann.id}/settings`, admin);
  assert(JSON.stringify(annSettings.dashboard) === JSON.stringify(board.cards), `ann's dashboard: ${JSON.stringify(annSettings.dashboard)}`);
  assert(!annPage.url().includes("board="), "back on her own dashboard");
  // Her profile: a picture uploaded (the server re-encodes it), a wrong current password
  // refused at its field.
  await annPage.getByRole("link", { name: "Signed in as ann" }).click();
  await annPage.getByRole("heading", { name: "Profile" }).waitFor();
  const png = Buffer.from("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=", "base64");
  await annPage.getByLabel(/Choose a picture/).setInputFiles({ name: "me.png", mimeType: "image/png", buffer: png });
  await annPage.getByRole("img", { name: "ann's picture" }).waitFor();
  assert((await call("GET", `/api/users/${ann.id}`, admin)).profilePicture, "the picture stored");
  await annPage.getByLabel("Current password").fill("not my password at all");
  await annPage.getByLabel("New password").fill("another horse battery staple");
  await annPage.getByRole("button", { name: "Save the password" }).click();
  await waitFor(async () => (await annPage.getByLabel("Current password").getAttribute("aria-invalid")) === "true", "the current password refused");
  await annPage.getByText("This session").waitFor();
  await axe("profile");
  await annPage.close();
  page = userPage;
  await adminPage.close();

  assert(consoleErrors.filter((e) => !e.includes("401") && !e.includes("422") && !e.includes("Failed to load resource")).length === 0, `console errors: ${consoleErrors.join("\n")}`);
  console.log(`web e2e: passed; timings ${JSON.stringify(timings)}; screenshots in ${artifacts}`);
} catch (e) {
  // What the screen showed when it failed.
  await page?.screenshot({ path: path.join(artifacts, "failure.png"), fullPage: true }).catch(() => {});
  throw e;
} finally {
  await browser?.close();
  proc.kill("SIGTERM");
  await idp.close();
  rmSync(dir, { recursive: true, force: true });
}
