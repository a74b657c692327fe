// The account pages, including the ones emailed links open: /verify-email,
// /reset-password and /accept-invitation (each with ?token=…).
import { useEffect, useRef, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { api, ApiError, type TokenPair } from "../api";
import { useAuth } from "../auth";
import { useI18n } from "../i18n";
import { readCallback, startSignIn, takePending, type SignInLink } from "../oauth";
import { AuthCard, Field, FormError, fieldError, useAction } from "../ui";

function useSubmit(action: () => Promise<void>) {
  const { error, busy, run } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(action);
  };
  return { error, busy, submit };
}

export function SignIn() {
  const { t } = useI18n();
  const { signIn } = useAuth();
  const navigate = useNavigate();
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const { error, busy, submit } = useSubmit(async () => {
    await signIn(login.trim(), password);
    navigate("/contacts", { replace: true });
  });
  return (
    <AuthCard title={t("signIn")}>
      <form onSubmit={submit} noValidate>
        <FormError error={error} fields={["username", "password"]} />
        <Field
          label={t("usernameOrEmail")}
          name="username"
          autoComplete="username"
          required
          value={login}
          onChange={(e) => setLogin(e.target.value)}
          error={fieldError(error, "username")}
        />
        <Field
          label={t("password")}
          name="password"
          type="password"
          autoComplete="current-password"
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          error={fieldError(error, "password")}
        />
        <button type="submit" disabled={busy}>
          {t("signIn")}
        </button>
      </form>
      <Providers />
      <p>
        <Link to="/forgot-password">{t("forgotPassword")}</Link>
      </p>
      <p>
        {t("noAccount")} <Link to="/register">{t("register")}</Link>
      </p>
    </AuthCard>
  );
}

/** The third-party logins the server offers, a button each (none: nothing shown). */
function Providers() {
  const { t } = useI18n();
  const [links, setLinks] = useState<SignInLink[]>([]);
  useEffect(() => {
    api<{ data: SignInLink[] }>("GET", "/api/auth/providers")
      .then((r) => setLinks(r.data))
      .catch(() => setLinks([]));
  }, []);
  if (links.length === 0) return null;
  return (
    <section className="providers" aria-label={t("orContinue")}>
      <p>{t("orContinue")}</p>
      {links.map((l) => (
        <button key={l.provider} type="button" className="secondary" onClick={() => startSignIn(l)}>
          {t("continueWith", { provider: l.label })}
        </button>
      ))}
    </section>
  );
}

/** Where a provider sends the browser back: the token in the fragment is logged in with once. */
export function OAuthCallback() {
  const { t } = useI18n();
  const { signedIn } = useAuth();
  const navigate = useNavigate();
  const [working, setWorking] = useState(true);
  const [message, setMessage] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const answer = readCallback(window.location.hash, takePending());
    // The token leaves the address bar (and the history) at once.
    window.history.replaceState(null, "", window.location.pathname);
    const stop = (m: string | null, e: unknown = null) => {
      setWorking(false);
      setMessage(m);
      setError(e);
    };
    if (answer.kind === "stale") return stop(t("oauthStale"));
    if (answer.kind === "denied") return stop(t("oauthDenied", { reason: answer.reason }));
    api<TokenPair>("POST", `/api/auth/oauth/${encodeURIComponent(answer.provider)}`, {
      oauthToken: answer.token,
      ...(answer.nonce ? { nonce: answer.nonce } : {}),
    })
      .then((pair) => {
        signedIn(pair);
        navigate("/contacts", { replace: true });
      })
      .catch((e: unknown) =>
        e instanceof ApiError && e.code === "email_not_verified" ? stop(t("oauthUnverified")) : stop(null, e),
      );
  }, [navigate, signedIn, t]);
  return (
    <AuthCard title={t("oauthTitle")}>
      {working && <p role="status">{t("oauthWorking")}</p>}
      {message && <p role="alert">{message}</p>}
      {error !== null && <FormError error={error} />}
      <Link to="/login">{t("signIn")}</Link>
    </AuthCard>
  );
}

export function Register() {
  const { t } = useI18n();
  const [form, setForm] = useState({ username: "", email: "", password: "" });
  const [sentTo, setSentTo] = useState<string | null>(null);
  const { error, busy, submit } = useSubmit(async () => {
    await api("POST", "/api/auth/register", { ...form, username: form.username.trim(), email: form.email.trim() });
    setSentTo(form.email.trim());
  });
  if (sentTo) {
    return (
      <AuthCard title={t("register")}>
        <p role="status">{t("registered", { email: sentTo })}</p>
        <Link to="/login">{t("signIn")}</Link>
      </AuthCard>
    );
  }
  const set = (k: keyof typeof form) => (e: { target: { value: string } }) => setForm({ ...form, [k]: e.target.value });
  return (
    <AuthCard title={t("register")}>
      <form onSubmit={submit} noValidate>
        <FormError error={error} fields={["username", "email", "password"]} />
        <Field label={t("username")} name="username" autoComplete="username" required value={form.username} onChange={set("username")} error={fieldError(error, "username")} />
        <Field label={t("email")} name="email" type="email" autoComplete="email" required value={form.email} onChange={set("email")} error={fieldError(error, "email")} />
        <Field label={t("password")} name="password" type="password" autoComplete="new-password" required value={form.password} onChange={set("password")} error={fieldError(error, "password")} />
        <button type="submit" disabled={busy}>
          {t("register")}
        </button>
      </form>
      <p>
        {t("haveAccount")} <Link to="/login">{t("signIn")}</Link>
      </p>
    </AuthCard>
  );
}

/** Opened from the emailed link: confirms at once, once. */
export function VerifyEmail() {
  const { t } = useI18n();
  const [params] = useSearchParams();
  const token = params.get("token");
  const [state, setState] = useState<"working" | "done" | unknown>(token ? "working" : null);
  const started = useRef(false);
  useEffect(() => {
    if (!token || started.current) return;
    started.current = true;
    api("POST", "/api/auth/verify-email", { token })
      .then(() => setState("done"))
      .catch((e: unknown) => setState(e));
  }, [token]);
  return (
    <AuthCard title={t("verifyTitle")}>
      {!token && <p role="alert">{t("noToken")}</p>}
      {state === "working" && <p role="status">{t("verifyWorking")}</p>}
      {state === "done" && <p role="status">{t("verifyDone")}</p>}
      {token && state !== "working" && state !== "done" && <FormError error={state} />}
      <Link to="/login">{t("signIn")}</Link>
    </AuthCard>
  );
}

export function ForgotPassword() {
  const { t } = useI18n();
  const [email, setEmail] = useState("");
  const [sent, setSent] = useState(false);
  const { error, busy, submit } = useSubmit(async () => {
    await api("POST", "/api/auth/password/forgot", { email: email.trim() });
    setSent(true);
  });
  return (
    <AuthCard title={t("forgotPassword")}>
      {sent ? (
        <p role="status">{t("linkSent")}</p>
      ) : (
        <form onSubmit={submit} noValidate>
          <FormError error={error} fields={["email"]} />
          <Field label={t("email")} name="email" type="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} error={fieldError(error, "email")} />
          <button type="submit" disabled={busy}>
            {t("sendLink")}
          </button>
        </form>
      )}
      <Link to="/login">{t("signIn")}</Link>
    </AuthCard>
  );
}

/** Opened from a reset or invitation link: a new password for the token. */
function NewPassword({ path, title, done }: { path: string; title: string; done: string }) {
  const { t } = useI18n();
  const [params] = useSearchParams();
  const token = params.get("token");
  const [password, setPassword] = useState("");
  const [finished, setFinished] = useState(false);
  const { error, busy, submit } = useSubmit(async () => {
    await api("POST", path, { token, password });
    setFinished(true);
  });
  return (
    <AuthCard title={title}>
      {!token ? (
        <p role="alert">{t("noToken")}</p>
      ) : finished ? (
        <p role="status">{done}</p>
      ) : (
        <form onSubmit={submit} noValidate>
          <FormError error={error} fields={["password"]} />
          <Field label={t("newPassword")} name="password" type="password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} error={fieldError(error, "password")} />
          <button type="submit" disabled={busy}>
            {t("savePassword")}
          </button>
        </form>
      )}
      <Link to="/login">{t("signIn")}</Link>
    </AuthCard>
  );
}

export function ResetPassword() {
  const { t } = useI18n();
  return <NewPassword path="/api/auth/password/reset" title={t("resetTitle")} done={t("resetDone")} />;
}

export function AcceptInvitation() {
  const { t } = useI18n();
  return <NewPassword path="/api/auth/accept-invitation" title={t("invitationTitle")} done={t("invitationDone")} />;
}
