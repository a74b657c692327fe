// Your profile: user name and email (a new email needs your password and is confirmed by
// a link), your picture (uploaded, re-encoded by the server; removed), your password, and
// your sessions (each can be ended; signing out everywhere ends them all).
import { useEffect, useState, type FormEvent } from "react";
import { api, apiFile, type SessionView, type User } from "../api";
import { useAuth } from "../auth";
import { useI18n } from "../i18n";
import { Field, fieldError, FormError, useAction } from "../ui";

/** A user's picture as an object URL (the avatar route needs the bearer token). */
export function useAvatar(user: User | null, version: number): string | null {
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    if (!user?.profilePicture) {
      setUrl(null);
      return;
    }
    let made: string | null = null;
    let live = true;
    apiFile("GET", user.profilePicture).then(
      (f) => {
        if (!live) return;
        made = URL.createObjectURL(f.blob);
        setUrl(made);
      },
      () => live && setUrl(null),
    );
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
    };
  }, [user?.profilePicture, user?.id, version]);
  return url;
}

export function Profile() {
  const { t, lang } = useI18n();
  const { user, updated, signOut } = useAuth();
  const [username, setUsername] = useState(user?.username ?? "");
  const [email, setEmail] = useState(user?.email ?? "");
  const [currentPassword, setCurrentPassword] = useState("");
  const [newPassword, setNewPassword] = useState("");
  const [oldPassword, setOldPassword] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const [pictures, setPictures] = useState(0);
  const [sessions, setSessions] = useState<SessionView[]>([]);
  const details = useAction();
  const password = useAction();
  const picture = useAction();
  const avatar = useAvatar(user, pictures);
  const when = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  const loadSessions = () => api<{ data: SessionView[] }>("GET", "/api/auth/sessions").then((p) => setSessions(p.data), () => {});
  useEffect(() => {
    void loadSessions();
  }, []);
  if (!user) return null;
  const emailChanged = email.trim().toLowerCase() !== user.email.toLowerCase();

  const saveDetails = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void details.run(async () => {
      const body: Record<string, unknown> = { username: username.trim(), version: user.version };
      if (emailChanged) Object.assign(body, { email: email.trim(), currentPassword });
      const u = await api<User>("PATCH", `/api/users/${user.id}`, body);
      updated(u);
      setCurrentPassword("");
      setNotice(emailChanged ? t("emailPending", { email: email.trim() }) : t("saved"));
    });
  };
  const changePassword = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void password.run(async () => {
      await api("POST", "/api/auth/password/change", { currentPassword: oldPassword, newPassword });
      setOldPassword("");
      setNewPassword("");
      setNotice(t("passwordChanged"));
      void loadSessions();
    });
  };
  const upload = (file: File | undefined) => {
    if (!file) return;
    setNotice(null);
    void picture.run(async () => {
      const form = new FormData();
      form.append("file", file);
      const u = await api<User>("PUT", `/api/users/${user.id}/avatar`, form);
      updated(u);
      setPictures((n) => n + 1);
    });
  };
  const removePicture = () =>
    void picture.run(async () => {
      updated(await api<User>("PATCH", `/api/users/${user.id}`, { profilePicture: null, version: user.version }));
      setPictures((n) => n + 1);
    });

  return (
    <section aria-labelledby="profile-title" className="profile">
      <h1 id="profile-title">{t("profile")}</h1>
      {notice && <p role="status">{notice}</p>}
      <div className="profile-grid">
        <section aria-labelledby="picture-title">
          <h2 id="picture-title">{t("picture")}</h2>
          {avatar ? <img className="avatar" src={avatar} alt={t("pictureOf", { name: user.username })} width={128} height={128} /> : <div className="avatar empty" aria-hidden="true">{user.username.slice(0, 1).toUpperCase()}</div>}
          <FormError error={picture.error} />
          <div className="field">
            <label htmlFor="avatar-file">{t("choosePicture")}</label>
            <input id="avatar-file" type="file" accept="image/png,image/jpeg,image/webp" disabled={picture.busy} onChange={(e) => upload(e.target.files?.[0])} />
          </div>
          {user.profilePicture && (
            <button type="button" className="danger" disabled={picture.busy} onClick={removePicture}>
              {t("removePicture")}
            </button>
          )}
        </section>
        <form onSubmit={saveDetails} noValidate className="record" aria-labelledby="details-title">
          <h2 id="details-title">{t("yourDetails")}</h2>
          <FormError error={details.error} fields={["username", "email", "currentPassword"]} />
          <Field label={t("username")} name="username" value={username} onChange={(e) => setUsername(e.target.value)} error={fieldError(details.error, "username")} />
          <Field label={t("email")} name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} error={fieldError(details.error, "email")} />
          {emailChanged && (
            <Field
              label={t("currentPassword")}
              name="currentPassword"
              type="password"
              autoComplete="current-password"
              value={currentPassword}
              onChange={(e) => setCurrentPassword(e.target.value)}
              error={fieldError(details.error, "currentPassword")}
            />
          )}
          <button type="submit" disabled={details.busy}>
            {t("save")}
          </button>
        </form>
        <form onSubmit={changePassword} noValidate className="record" aria-labelledby="password-title">
          <h2 id="password-title">{t("changePassword")}</h2>
          <FormError error={password.error} fields={["currentPassword", "newPassword"]} />
          <Field
            label={t("currentPassword")}
            name="oldPassword"
            type="password"
            autoComplete="current-password"
            value={oldPassword}
            onChange={(e) => setOldPassword(e.target.value)}
            error={fieldError(password.error, "currentPassword")}
          />
          <Field
            label={t("newPassword")}
            name="newPassword"
            type="password"
            autoComplete="new-password"
            value={newPassword}
            onChange={(e) => setNewPassword(e.target.value)}
            error={fieldError(password.error, "newPassword")}
          />
          <button type="submit" disabled={password.busy}>
            {t("savePassword")}
          </button>
        </form>
      </div>
      <section aria-labelledby="sessions-title">
        <h2 id="sessions-title">{t("sessions")}</h2>
        <table>
          <thead>
            <tr>
              <th scope="col">{t("signedInWith")}</th>
              <th scope="col">{t("lastUsed")}</th>
              <th scope="col">{t("device")}</th>
              <th scope="col">
                <span className="visually-hidden">{t("actions")}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {sessions.map((s) => (
              <tr key={s.id}>
                <td>{s.method}</td>
                <td>{when.format(new Date(s.lastUsedAt))}</td>
                <td>{[s.userAgent, s.ip].filter(Boolean).join(" · ")}</td>
                <td>
                  {s.current ? (
                    t("thisSession")
                  ) : (
                    <button type="button" className="link" onClick={() => void api("DELETE", `/api/auth/sessions/${s.id}`).then(loadSessions)}>
                      {t("endSession")}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <button
          type="button"
          className="secondary"
          onClick={() =>
            void api("POST", "/api/auth/logout-all").then(
              () => signOut(),
              () => signOut(),
            )
          }
        >
          {t("signOutEverywhere")}
        </button>
      </section>
    </section>
  );
}
