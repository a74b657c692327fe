// The customer's card page in a real browser: Debian's chromium driven by
// playwright-core, against a real crm-server whose Stripe is localstripe (PyPI), whose
// own Stripe.js stand-in the page loads. The customer types a card into the form,
// saves it, and the server (asking Stripe again) keeps it for the company.
//
//   node e2e/card.mjs path/to/crm-server path/to/python-with-localstripe
//
// Environment: CRM_E2E_CHROMIUM (default /usr/bin/chromium), CRM_E2E_ARTIFACTS (where
// the screenshot goes). Exits non-zero on the first failure.
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";
import { assert, freePort, waitFor } from "./lib.mjs";

const [server, python] = process.argv.slice(2);
if (!server || !python) throw new Error("usage: node e2e/card.mjs path/to/crm-server path/to/python");
const artifacts = path.resolve(process.env.CRM_E2E_ARTIFACTS ?? "e2e-artifacts");
mkdirSync(artifacts, { recursive: true });

const dir = mkdtempSync(path.join(tmpdir(), "crm-card-e2e-"));
const [port, stripePort] = [await freePort(), await freePort()];
const base = `http://127.0.0.1:${port}`;
const stripe = `http://127.0.0.1:${stripePort}`;
const PASSWORD = "correct horse battery staple";
const procs = [];
let browser;
try {
  procs.push(spawn(python, ["-m", "localstripe", "--port", String(stripePort), "--from-scratch"], { stdio: "ignore" }));
  const made = spawnSync(server, ["create-admin", "--username", "admin", "--email", "admin@example.com", "--password", PASSWORD], {
    cwd: dir,
    env: { ...process.env, CRM_LOG: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  assert(made.status === 0, "crm-server create-admin");
  procs.push(
    spawn(server, ["--bind", `127.0.0.1:${port}`], {
      cwd: dir,
      env: {
        ...process.env,
        CRM_PUBLIC_URL: base,
        CRM_MAIL_DIR: path.join(dir, "mail"),
        CRM_LOG: "warn",
        CRM_STRIPE_SECRET_KEY: "sk_test_e2e",
        CRM_STRIPE_PUBLISHABLE_KEY: "pk_test_e2e",
        CRM_STRIPE_WEBHOOK_SECRETS: "whsec_e2e",
        CRM_STRIPE_API_BASE: stripe,
        CRM_STRIPE_JS_URL: `${stripe}/js.stripe.com/v3/`,
      },
      stdio: ["ignore", "ignore", "inherit"],
    }),
  );
  await waitFor(async () => fetch(`${stripe}/v1/balance`, { headers: { authorization: "Bearer sk_test_e2e" } }).then((r) => r.ok).catch(() => false), "localstripe");
  await waitFor(async () => fetch(`${base}/health`).then((r) => r.ok).catch(() => false), "crm-server", 30_000);

  const json = { "content-type": "application/json" };
  const login = await fetch(`${base}/api/auth/login`, { method: "POST", headers: json, body: JSON.stringify({ username: "admin", password: PASSWORD }) });
  const auth = { authorization: `Bearer ${(await login.json()).accessToken}`, ...json };
  const company = await (await fetch(`${base}/api/companies`, { method: "POST", headers: auth, body: JSON.stringify({ name: "Acme SA" }) })).json();
  const link = await (await fetch(`${base}/api/companies/${company.id}/card-link`, { method: "POST", headers: auth })).json();
  assert(link.url?.startsWith(`${base}/card/`), `a card link: ${JSON.stringify(link)}`);

  browser = await chromium.launch({ executablePath: process.env.CRM_E2E_CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
  const page = await browser.newPage({ locale: "en-GB" });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Console errors but the 404s, which are told by URL below (a browser asks for
  // /favicon.ico on its own).
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
  page.on("response", (r) => r.status() >= 400 && !r.url().endsWith("/favicon.ico") && errors.push(`${r.status()} ${r.url()}`));
  await page.goto(link.url);
  await page.getByText("Acme SA").first().waitFor();
  // localstripe's Stripe.js puts its card fields (number, month, year, cvc, postal
  // code) where the page mounted Stripe's element.
  await page.locator("#card input[placeholder=number]").waitFor();
  await page.fill("#card input[placeholder=number]", "4242424242424242");
  await page.fill("#card input[placeholder=exp_month]", "12");
  await page.fill("#card input[placeholder=exp_year]", "30");
  await page.fill("#card input[placeholder=cvc]", "123");
  await page.fill("#card input[placeholder=postal_code]", "75002");
  await page.getByRole("button", { name: "Save the card" }).click();
  await page.getByText("Saved: visa •••• 4242").waitFor({ timeout: 15_000 });
  await page.screenshot({ path: path.join(artifacts, "card-saved.png"), fullPage: true });
  assert(errors.length === 0, `no script or CSP errors on the card page: ${errors.join(" | ")}`);

  // The server kept it, having asked Stripe; opened again, the page says what is on file.
  const method = await (await fetch(`${base}/api/companies/${company.id}/payment-method`, { headers: auth })).json();
  assert(method.label === "visa •••• 4242" && method.kind === "card", `the method on file: ${JSON.stringify(method)}`);
  await page.goto(link.url);
  await page.getByText("On file now: visa •••• 4242").waitFor();
  // A bank account instead, through the page's SEPA form: it replaces the card.
  await page.fill("#sepa-form input[name=name]", "Acme SA");
  await page.fill("#sepa-form input[name=email]", "ap@acme.example");
  await page.fill("#sepa-form input[name=iban]", "DE89 3704 0044 0532 0130 00");
  await page.getByRole("button", { name: "Save the account" }).click();
  await page.getByText("Saved: SEPA debit •••• 3000").waitFor({ timeout: 15_000 });
  await page.screenshot({ path: path.join(artifacts, "sepa-saved.png"), fullPage: true });
  const sepa = await (await fetch(`${base}/api/companies/${company.id}/payment-method`, { headers: auth })).json();
  assert(sepa.kind === "sepa_debit", `the account on file: ${JSON.stringify(sepa)}`);
  assert(errors.length === 0, `no script or CSP errors on the card page: ${errors.join(" | ")}`);
  // A forged link opens nothing.
  const forged = await page.goto(`${link.url}x`);
  assert(forged?.status() === 404, "a forged card link is a 404 page");

  // The company's page in the app: what is on file, a new link to hand over, forgotten.
  const app = await browser.newPage({ locale: "en-GB" });
  const appErrors = [];
  app.on("pageerror", (e) => appErrors.push(String(e)));
  await app.goto(`${base}/login`);
  await app.getByLabel("User name or email").fill("admin");
  await app.getByLabel("Password").fill(PASSWORD);
  await app.getByRole("button", { name: "Sign in" }).click();
  await app.getByText("Signed in as admin").waitFor();
  await app.goto(`${base}/companies/${company.id}`);
  await app.getByRole("heading", { name: "Card on file" }).waitFor();
  await app.getByText(/^SEPA debit •••• 3000, saved /).waitFor();
  await app.getByRole("button", { name: "Link to save a card" }).click();
  const shown = await app.getByLabel("Link to save a card").inputValue();
  assert(shown.startsWith(`${base}/card/`) && shown !== link.url, `a new card link shown: ${shown}`);
  await app.getByRole("button", { name: "Forget the card" }).click();
  await app.getByText("The card is forgotten.").waitFor();
  await app.getByText("No payment method saved.").waitFor();
  await app.screenshot({ path: path.join(artifacts, "company-card-on-file.png"), fullPage: true });
  const gone = await fetch(`${base}/api/companies/${company.id}/payment-method`, { headers: auth });
  assert(gone.status === 404, `forgotten at the server: ${gone.status}`);
  assert(appErrors.length === 0, `no script errors in the app: ${appErrors.join(" | ")}`);
  console.log("card page e2e: ok (a card, then a SEPA account, saved through the page and kept by the server; shown, linked and forgotten from the company's page)");
} finally {
  await browser?.close();
  for (const p of procs) p.kill();
  rmSync(dir, { recursive: true, force: true });
}
