// Third-party sign-in from the browser. The sign-in page lists the providers the server
// has configured (GET /api/auth/providers); a button sends the browser to the provider's
// authorization endpoint with a fresh `state` and `nonce` kept in this tab's session
// storage. The provider sends it back to /oauth/callback with the token in the URL's
// fragment (an OpenID Connect `id_token`, or Facebook's access token), which is handed to
// POST /api/auth/oauth/{provider} along with the nonce; the server checks the token and
// that its nonce is ours.
import type { components } from "./openapi";

export type SignInLink = components["schemas"]["SignInLink"];

const KEY = "crm-rs.oauth";

/** Where the provider sends the browser back. */
export function callbackUrl(origin: string): string {
  return `${origin}/oauth/callback`;
}

/** A random URL-safe string of 128 bits. */
export function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The provider's authorization URL for this sign-in. */
export function authorizeUrl(link: SignInLink, origin: string, state: string, nonce: string): string {
  const url = new URL(link.authorizeUrl);
  url.searchParams.set("client_id", link.clientId);
  url.searchParams.set("redirect_uri", callbackUrl(origin));
  url.searchParams.set("response_type", link.responseType);
  url.searchParams.set("scope", link.scope);
  url.searchParams.set("state", state);
  if (link.responseType === "id_token") url.searchParams.set("nonce", nonce);
  return url.toString();
}

interface Pending {
  provider: string;
  label: string;
  state: string;
  nonce: string;
}

/** Remembers this sign-in and sends the browser to the provider. */
export function startSignIn(link: SignInLink): void {
  const pending: Pending = { provider: link.provider, label: link.label, state: randomToken(), nonce: randomToken() };
  sessionStorage.setItem(KEY, JSON.stringify(pending));
  window.location.assign(authorizeUrl(link, window.location.origin, pending.state, pending.nonce));
}

/** What the provider's answer says: a token to log in with, or why not. */
export type Callback =
  | { kind: "token"; provider: string; label: string; token: string; nonce?: string }
  | { kind: "denied"; label: string; reason: string }
  | { kind: "stale" };

/**
 * Reads the provider's answer from the callback's fragment (`#id_token=…&state=…`, or
 * `#error=access_denied&…`) against the sign-in this tab started (`stored`): an answer
 * to another sign-in, or to none, is stale.
 */
export function readCallback(hash: string, stored: string | null): Callback {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  let pending: Pending | null = null;
  try {
    pending = stored ? (JSON.parse(stored) as Pending) : null;
  } catch {
    pending = null;
  }
  if (!pending || !pending.state || params.get("state") !== pending.state) return { kind: "stale" };
  const error = params.get("error");
  if (error) return { kind: "denied", label: pending.label, reason: params.get("error_description") || error };
  const idToken = params.get("id_token");
  if (idToken) return { kind: "token", provider: pending.provider, label: pending.label, token: idToken, nonce: pending.nonce };
  const accessToken = params.get("access_token");
  if (accessToken) return { kind: "token", provider: pending.provider, label: pending.label, token: accessToken };
  return { kind: "denied", label: pending.label, reason: "no token" };
}

/** The pending sign-in of this tab, once: reading it forgets it. */
export function takePending(): string | null {
  const stored = sessionStorage.getItem(KEY);
  sessionStorage.removeItem(KEY);
  return stored;
}
