import { describe, expect, it } from "vitest";
import { authorizeUrl, readCallback, randomToken, type SignInLink } from "./oauth";

const google: SignInLink = {
  provider: "google",
  label: "Google",
  authorizeUrl: "https://accounts.google.com/o/oauth2/v2/auth",
  clientId: "web-client",
  responseType: "id_token",
  scope: "openid email profile",
};
const stored = JSON.stringify({ provider: "google", label: "Google", state: "s1", nonce: "n1" });

describe("third-party sign-in", () => {
  it("asks the provider for an ID token bound to our nonce, sent back to the callback", () => {
    const url = new URL(authorizeUrl(google, "https://crm.example.com", "s1", "n1"));
    expect(url.origin + url.pathname).toBe("https://accounts.google.com/o/oauth2/v2/auth");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: "web-client",
      redirect_uri: "https://crm.example.com/oauth/callback",
      response_type: "id_token",
      scope: "openid email profile",
      state: "s1",
      nonce: "n1",
    });
  });

  it("sends no nonce where the answer is an access token (Facebook)", () => {
    const fb = { ...google, provider: "facebook", responseType: "token", scope: "email" };
    expect(new URL(authorizeUrl(fb, "https://crm.example.com", "s", "n")).searchParams.has("nonce")).toBe(false);
  });

  it("takes the token of the sign-in it started, with its nonce", () => {
    expect(readCallback("#id_token=abc.def.ghi&state=s1", stored)).toEqual({
      kind: "token",
      provider: "google",
      label: "Google",
      token: "abc.def.ghi",
      nonce: "n1",
    });
    expect(readCallback("#access_token=EAAB&state=s1", stored)).toEqual({
      kind: "token",
      provider: "google",
      label: "Google",
      token: "EAAB",
    });
  });

  it("refuses an answer to another sign-in, or to none", () => {
    expect(readCallback("#id_token=abc&state=other", stored)).toEqual({ kind: "stale" });
    expect(readCallback("#id_token=abc&state=s1", null)).toEqual({ kind: "stale" });
    expect(readCallback("#id_token=abc", stored)).toEqual({ kind: "stale" });
    expect(readCallback("#id_token=abc&state=s1", "not json")).toEqual({ kind: "stale" });
  });

  it("says why the provider refused", () => {
    expect(readCallback("#error=access_denied&error_description=The+user+cancelled&state=s1", stored)).toEqual({
      kind: "denied",
      label: "Google",
      reason: "The user cancelled",
    });
    expect(readCallback("#state=s1", stored)).toEqual({ kind: "denied", label: "Google", reason: "no token" });
  });

  it("makes a new random state each time", () => {
    const a = randomToken();
    expect(a).toMatch(/^[0-9a-f]{32}$/);
    expect(randomToken()).not.toBe(a);
  });
});
