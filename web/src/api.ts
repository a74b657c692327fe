// The REST API as the app calls it: bearer tokens (refreshed once on a 401), JSON in and
// out, and problem+json answers turned into an ApiError with its field errors. The
// types are the API's own: generated from its OpenAPI document (`npm run types`).
import type { components } from "./openapi";

type Schemas = components["schemas"];

export interface FieldError {
  field: string;
  code: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors: FieldError[];
  readonly requestId?: string;
  /** The whole problem document (a version conflict carries `current` and `currentVersion`). */
  readonly body: Record<string, unknown>;

  constructor(
    status: number,
    code: string,
    detail: string,
    errors: FieldError[] = [],
    requestId?: string,
    body: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.errors = errors;
    this.requestId = requestId;
    this.body = body;
  }

  /** The message of the first error about `field`, if any. */
  field(name: string): string | undefined {
    return this.errors.find((e) => e.field === name)?.message;
  }
}

/** The ApiError of a failed answer, problem+json or not. */
export function problemOf(status: number, body: unknown): ApiError {
  if (body && typeof body === "object") {
    const p = body as Record<string, unknown>;
    const errors = Array.isArray(p.errors)
      ? p.errors.filter(
          (e): e is FieldError => !!e && typeof e === "object" && typeof (e as FieldError).field === "string",
        )
      : [];
    const detail = typeof p.detail === "string" ? p.detail : typeof p.title === "string" ? p.title : `HTTP ${status}`;
    const code = typeof p.code === "string" ? p.code : "http_error";
    return new ApiError(status, code, detail, errors, typeof p.requestId === "string" ? p.requestId : undefined, p);
  }
  return new ApiError(status, "http_error", `HTTP ${status}`);
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

const TOKENS_KEY = "crm-rs.tokens";

export function loadTokens(): Tokens | null {
  try {
    const raw = localStorage.getItem(TOKENS_KEY);
    if (!raw) return null;
    const t = JSON.parse(raw) as Partial<Tokens>;
    return t.accessToken && t.refreshToken ? { accessToken: t.accessToken, refreshToken: t.refreshToken } : null;
  } catch {
    return null;
  }
}

export function saveTokens(t: Tokens | null): void {
  if (t) localStorage.setItem(TOKENS_KEY, JSON.stringify(t));
  else localStorage.removeItem(TOKENS_KEY);
}

let refreshing: Promise<boolean> | null = null;

/** Trades the refresh token for a new pair, once at a time. */
async function refresh(): Promise<boolean> {
  const t = loadTokens();
  if (!t) return false;
  refreshing ??= (async () => {
    try {
      const res = await fetch("/api/auth/refresh", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ refreshToken: t.refreshToken }),
      });
      if (!res.ok) {
        saveTokens(null);
        return false;
      }
      const pair = (await res.json()) as Tokens;
      saveTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
      return true;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Sends one request with the stored bearer token (refreshed once on a 401): a JSON
 * body, or a form (`FormData`, a file upload) as the browser encodes it. */
async function send(method: string, path: string, body: unknown, extra: Record<string, string>, retried = false): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json", ...extra };
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  const t = loadTokens();
  if (t) headers.Authorization = `Bearer ${t.accessToken}`;
  const payload = body === undefined ? undefined : form ? body : JSON.stringify(body);
  const res = await fetch(path, { method, headers, body: payload });
  if (res.status === 401 && t && !retried && !path.startsWith("/api/auth/") && (await refresh())) {
    return send(method, path, body, extra, true);
  }
  return res;
}

/** The JSON of an answer, or undefined when it has none (or is not JSON). */
async function jsonOf(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Calls the API; resolves with the JSON answer (undefined for 204), throws ApiError. */
export async function api<T>(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<T> {
  const res = await send(method, path, body, extra);
  const parsed = await jsonOf(res);
  if (!res.ok) throw problemOf(res.status, parsed);
  return parsed as T;
}

/** Calls the API for a file (a report as CSV, XLSX or PDF; a picture): the body and the
 * name the server gives it (`Content-Disposition`); throws ApiError as `api` does. */
export async function apiFile(method: string, path: string, body?: unknown): Promise<{ blob: Blob; name: string }> {
  const res = await send(method, path, body, {});
  if (!res.ok) throw problemOf(res.status, await jsonOf(res));
  const disposition = res.headers.get("content-disposition") ?? "";
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "report";
  return { blob: await res.blob(), name };
}

/** Hands a file to the browser's downloads. */
export function saveFile(name: string, blob: Blob): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export type User = Schemas["UserView"];

export type TokenPair = Schemas["TokenPairView"];

export type PageInfo = Schemas["PageInfo"];

export interface Page<T> {
  data: T[];
  pageInfo: PageInfo;
}

export type Contact = Schemas["Contact"];

export const LIFECYCLE_STAGES = ["subscriber", "lead", "mql", "sql", "opportunity", "customer"];

export type Notification = Schemas["Notification"];

export type Frequency = Schemas["Frequency"];

export type UserSettings = Schemas["UserSettings"];

/** The events and channels of notification preferences (as the server names them). */
export const EVENTS = [
  "task.assigned",
  "task.due",
  "deal.assigned",
  "deal.stage_changed",
  "deal.won",
  "deal.lost",
  "contact.assigned",
  "record.changed",
  "account.security",
  "invoice.paid",
] as const;
export const CHANNELS = ["in_app", "email", "slack", "teams"] as const;

/** How an event reaches a user on a channel, defaults included (as the server reads it;
 * the server answers names, even for preferences stored as booleans). */
export function frequencyOf(s: UserSettings, event: string, channel: string): Frequency {
  if (event === "account.security" && channel === "email") return "immediate";
  const v = s.notificationPreferences[event]?.[channel];
  if (v) return v;
  if (event === "record.changed") return channel === "in_app" ? "immediate" : "off";
  return channel === "email" || channel === "in_app" ? "immediate" : "off";
}

export type DealStage = Schemas["DealStage"];
export const DEAL_STAGES: readonly DealStage[] = ["prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"];

export type Deal = Schemas["Deal"];

export type DealStageChange = Schemas["DealStageChange"];

/** Minor units per major unit of a currency (100 for EUR, 1 for JPY). */
export function minorPerMajor(currency: string): number {
  try {
    const digits = new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits ?? 2;
    return 10 ** digits;
  } catch {
    return 100;
  }
}

/** Minor units as money in a language: 123456 EUR → "€1,234.56". */
export function money(minor: number, currency: string, lang: string): string {
  const f = new Intl.NumberFormat(lang, { style: "currency", currency });
  const digits = f.resolvedOptions().maximumFractionDigits ?? 2;
  return f.format(minor / 10 ** digits);
}

export type Company = Schemas["Company"];
export type SavedReport = Schemas["SavedReport"];
export type Team = Schemas["Team"];
export type AuditEvent = Schemas["AuditEvent"];
export type SessionView = Schemas["SessionView"];
export type Interaction = Schemas["Interaction"];
export type ReportResult = Schemas["ReportResult"];
export type Task = Schemas["Task"];
export type ImportView = Schemas["ImportView"];
export type UploadView = Schemas["UploadView"];
export type Attachment = Schemas["Attachment"];
export type DuplicateCandidate = Schemas["DuplicateCandidate"];
export type ContactMerge = Schemas["ContactMerge"];
