// A local OpenID Connect provider for the browser test's "Continue with …" button, on
// 127.0.0.1: a discovery document, its JWKS (the RSA test key of tests/fixtures), and an
// authorization endpoint that shows a consent page and sends the browser back with an
// RS256 ID token (implicit flow, `response_type=id_token`) carrying the nonce it was
// given, or with `error=access_denied` when the person cancels.
import { createSign, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";

const fixture = (name) => readFileSync(new URL(`../../tests/fixtures/${name}`, import.meta.url), "utf8");
const KEY = fixture("oidc-test-key-1.pem");
const JWKS = JSON.parse(fixture("oidc-test-jwks-1.json"));
const KID = JWKS.keys[0].kid;

const b64url = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Signs `claims` as an RS256 JWT with the test key. */
export function idToken(claims) {
  const signing = `${b64url({ alg: "RS256", typ: "JWT", kid: KID })}.${b64url(claims)}`;
  const signature = createSign("RSA-SHA256").update(signing).sign(KEY).toString("base64url");
  return `${signing}.${signature}`;
}

/**
 * Starts the provider on `port` for the client `clientId`, whose only allowed redirect
 * is `redirectUri`; everyone who signs in is `person` ({sub, email, name}).
 */
export async function startIdp({ port, clientId, redirectUri, person }) {
  const issuer = `http://127.0.0.1:${port}`;
  const served = { authorizations: 0, tokens: 0 };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, issuer);
    const send = (status, type, body, headers = {}) => {
      res.writeHead(status, { "content-type": type, ...headers });
      res.end(body);
    };
    const back = (fragment) => send(302, "text/plain", "", { location: `${redirectUri}#${new URLSearchParams(fragment)}` });
    if (url.pathname === "/.well-known/openid-configuration") {
      return send(200, "application/json", JSON.stringify({
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ["id_token"],
        id_token_signing_alg_values_supported: ["RS256"],
      }));
    }
    if (url.pathname === "/jwks") return send(200, "application/json", JSON.stringify(JWKS));
    if (url.pathname === "/authorize" && req.method === "GET") {
      const q = url.searchParams;
      served.authorizations++;
      if (q.get("client_id") !== clientId || q.get("redirect_uri") !== redirectUri) {
        return send(400, "text/plain", "unknown client or redirect_uri");
      }
      if (q.get("response_type") !== "id_token" || !q.get("nonce") || !(q.get("scope") ?? "").split(" ").includes("openid")) {
        return send(400, "text/plain", "implicit flow with an openid scope and a nonce only");
      }
      const hidden = ["state", "nonce"].map((k) => `<input type="hidden" name="${k}" value="${escape(q.get(k) ?? "")}">`).join("");
      return send(200, "text/html; charset=utf-8", `<!doctype html><html lang="en"><head><title>Local ID</title></head><body>
<main><h1>Local ID</h1><p>crm-rs asks for your name and email address.</p>
<form method="post" action="/authorize">${hidden}
<button name="answer" value="yes">Continue as ${escape(person.email)}</button>
<button name="answer" value="no">Cancel</button></form></main></body></html>`);
    }
    if (url.pathname === "/authorize" && req.method === "POST") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        const form = new URLSearchParams(body);
        const state = form.get("state") ?? "";
        if (form.get("answer") !== "yes") return back({ error: "access_denied", state });
        const now = Math.floor(Date.now() / 1000);
        served.tokens++;
        back({
          id_token: idToken({
            iss: issuer, aud: clientId, sub: person.sub, email: person.email, email_verified: true, name: person.name,
            nonce: form.get("nonce"), iat: now, nbf: now, exp: now + 600, jti: randomUUID(),
          }),
          state,
        });
      });
      return;
    }
    send(404, "text/plain", "not found");
  });
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { issuer, served, close: () => new Promise((resolve) => server.close(resolve)) };
}
