// The admin screens (admins; managers see what their role allows): users (invite, role,
// team, suspend, deactivate, restore, erase), teams, and the audit log with the chain's
// check. The server decides what each caller may do; a refusal is shown as it answers.
import { useEffect, useState, type FormEvent, type ReactNode } from "react";
import { Link, NavLink, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, type AuditEvent, type Team, type User } from "../api";
import { useAuth } from "../auth";
import { useI18n, type Key } from "../i18n";
import { RecordList } from "../RecordList";
import { RecordPage } from "../RecordPage";
import { Timeline } from "../Timeline";
import { Field, fieldError, FormError, SelectField, useAction } from "../ui";
import { forgetUsers, nameOf, useTeams, useUsers } from "../users";

const ROLES = ["user", "manager", "admin"];
const STATUSES = ["pending", "active", "suspended", "deactivated", "erased"];

/** The roles and teams as a form's options. */
function useChoices() {
  const { t } = useI18n();
  const teams = useTeams();
  return {
    roleOptions: ROLES.map((r) => ({ value: r, label: t(`roleName.${r}` as Key) })),
    teamOptions: teams.map((x) => ({ value: x.id, label: x.name })),
  };
}

/** The admin area's own navigation above each of its screens. */
export function AdminArea({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  return (
    <div className="admin">
      <nav aria-label={t("admin")} className="subnav">
        <NavLink to="/admin/users" end>
          {t("users")}
        </NavLink>
        <NavLink to="/admin/teams">{t("teams")}</NavLink>
        <NavLink to="/admin/audit">{t("auditLog")}</NavLink>
      </nav>
      {children}
    </div>
  );
}

export function AdminUsers() {
  const { t, lang } = useI18n();
  const teams = useTeams();
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  return (
    <RecordList<User>
      title={t("users")}
      path="/api/users"
      sort="username"
      nameOf={(u) => u.username}
      toolbar={
        <Link className="button" to="/admin/users/new">
          {t("inviteUser")}
        </Link>
      }
      filterFields={[
        { field: "username", label: t("username"), type: "text" },
        { field: "email", label: t("email"), type: "text" },
        { field: "role", label: t("role"), type: "choice", choices: ROLES.map((r) => ({ value: r, label: t(`roleName.${r}` as Key) })) },
        { field: "status", label: t("status"), type: "choice", choices: STATUSES.map((s) => ({ value: s, label: t(`userStatus.${s}` as Key) })) },
        { field: "teamId", label: t("team"), type: "choice", choices: teams.map((x) => ({ value: x.id, label: x.name })) },
      ]}
      columns={[
        { key: "username", label: t("username"), sort: "username", text: (u) => u.username, cell: (u) => <Link to={`/admin/users/${u.id}`}>{u.username}</Link> },
        { key: "email", label: t("email"), sort: "email", cell: (u) => u.email },
        { key: "role", label: t("role"), sort: "role", cell: (u) => t(`roleName.${u.role}` as Key) },
        { key: "team", label: t("team"), cell: (u) => teams.find((x) => x.id === u.teamId)?.name ?? "" },
        { key: "status", label: t("status"), sort: "status", cell: (u) => t(`userStatus.${u.status}` as Key) },
        { key: "lastLogin", label: t("lastLogin"), sort: "lastLoginAt", cell: (u) => (u.lastLoginAt ? date.format(new Date(u.lastLoginAt)) : "") },
      ]}
    />
  );
}

/** Invite a user: they get an email with a link to choose their password. */
export function InviteUser() {
  const { t } = useI18n();
  const navigate = useNavigate();
  const { roleOptions, teamOptions } = useChoices();
  const [draft, setDraft] = useState({ username: "", email: "", role: "user", teamId: "" });
  const { error, busy, run } = useAction();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      const u = await api<User>("POST", "/api/users", {
        username: draft.username.trim(),
        email: draft.email.trim(),
        role: draft.role,
        ...(draft.teamId ? { teamId: draft.teamId } : {}),
      });
      forgetUsers();
      navigate(`/admin/users/${u.id}`, { replace: true });
    });
  };
  return (
    <section aria-labelledby="invite-title">
      <p>
        <Link to="/admin/users">{t("back")}</Link>
      </p>
      <h1 id="invite-title">{t("inviteUser")}</h1>
      <p className="hint">{t("inviteHint")}</p>
      <FormError error={error} fields={["username", "email", "role", "teamId"]} />
      <form onSubmit={submit} noValidate className="record">
        <Field label={t("username")} name="username" value={draft.username} onChange={(e) => setDraft({ ...draft, username: e.target.value })} error={fieldError(error, "username")} />
        <Field label={t("email")} name="email" type="email" value={draft.email} onChange={(e) => setDraft({ ...draft, email: e.target.value })} error={fieldError(error, "email")} />
        <SelectField label={t("role")} value={draft.role} onChange={(role) => setDraft({ ...draft, role })} options={roleOptions} error={fieldError(error, "role")} />
        <SelectField label={t("team")} value={draft.teamId} onChange={(teamId) => setDraft({ ...draft, teamId })} options={teamOptions} error={fieldError(error, "teamId")} blank />
        <button type="submit" disabled={busy}>
          {t("sendInvitation")}
        </button>
      </form>
    </section>
  );
}

export function AdminUserPage() {
  const { id } = useParams();
  const { t, lang } = useI18n();
  const { user: me } = useAuth();
  const { roleOptions, teamOptions } = useChoices();
  const users = useUsers();
  const [user, setUser] = useState<User | null>(null);
  const [role, setRole] = useState("");
  const [teamId, setTeamId] = useState("");
  const [until, setUntil] = useState("");
  const [reason, setReason] = useState("");
  const [sure, setSure] = useState(false);
  const [changes, setChanges] = useState(0);
  const { error, setError, busy, run } = useAction();
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  const adopt = (u: User) => {
    setUser(u);
    setRole(u.role);
    setTeamId(u.teamId ?? "");
    setChanges((n) => n + 1);
    forgetUsers();
  };
  useEffect(() => {
    api<User>("GET", `/api/users/${id}`).then(adopt, setError);
  }, [id, setError]);
  if (!user) {
    return error instanceof ApiError && error.status === 404 ? <p role="alert">{t("notFound")}</p> : error ? <FormError error={error} /> : <p role="status">{t("loading")}</p>;
  }
  const save = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => adopt(await api<User>("PATCH", `/api/users/${user.id}`, { role, teamId: teamId || null, version: user.version })));
  };
  const act = (path: string, body?: unknown, extra?: Record<string, string>) => run(async () => adopt(await api<User>("POST", `/api/users/${user.id}/${path}`, body, extra)));
  const erased = user.status === "erased";
  const deleted = !!user.deletedAt;
  return (
    <section aria-labelledby="user-title" className="record-page">
      <p>
        <Link to="/admin/users">{t("back")}</Link>
      </p>
      <h1 id="user-title">{user.username}</h1>
      <p>
        {user.email} · {t(`userStatus.${user.status}` as Key)}
        {user.suspendedUntil && ` · ${t("suspendedUntil", { when: date.format(new Date(user.suspendedUntil)) })}`}
        {user.suspensionReason && ` · ${user.suspensionReason}`}
      </p>
      <FormError error={error} fields={["role", "teamId", "until", "reason"]} />
      <div className="record-body">
        <div>
          <form onSubmit={save} noValidate className="record" aria-labelledby="access-title">
            <h2 id="access-title">{t("access")}</h2>
            <SelectField label={t("role")} value={role} onChange={setRole} options={roleOptions} error={fieldError(error, "role")} disabled={erased} />
            <SelectField label={t("team")} value={teamId} onChange={setTeamId} options={teamOptions} error={fieldError(error, "teamId")} disabled={erased} blank />
            <button type="submit" disabled={busy || erased}>
              {t("save")}
            </button>
          </form>
          {!erased && user.id !== me?.id && (
            <section aria-labelledby="status-title" className="record">
              <h2 id="status-title">{t("accountState")}</h2>
              {user.status === "suspended" ? (
                <button type="button" disabled={busy} onClick={() => void act("unsuspend")}>
                  {t("unsuspend")}
                </button>
              ) : (
                !deleted && (
                  <div className="toolbar wrap">
                    <Field label={t("suspendUntil")} name="until" type="date" value={until} onChange={(e) => setUntil(e.target.value)} error={fieldError(error, "until")} />
                    <Field label={t("reason")} name="reason" value={reason} onChange={(e) => setReason(e.target.value)} error={fieldError(error, "reason")} />
                    <button type="button" disabled={busy} onClick={() => void act("suspend", { ...(until ? { until } : {}), ...(reason.trim() ? { reason: reason.trim() } : {}) })}>
                      {t("suspend")}
                    </button>
                  </div>
                )
              )}
              <div className="toolbar">
                {deleted ? (
                  <button type="button" disabled={busy} onClick={() => void act("restore")}>
                    {t("restore")}
                  </button>
                ) : (
                  <button
                    type="button"
                    className="danger"
                    disabled={busy}
                    onClick={() =>
                      void run(async () => {
                        await api("DELETE", `/api/users/${user.id}`, undefined, { "If-Match": `"${user.version}"` });
                        adopt(await api<User>("GET", `/api/users/${user.id}`));
                      })
                    }
                  >
                    {t("deactivate")}
                  </button>
                )}
              </div>
              <div className="erase">
                <label>
                  <input type="checkbox" checked={sure} onChange={(e) => setSure(e.target.checked)} /> {t("eraseSure", { name: user.username })}
                </label>
                <button type="button" className="danger" disabled={busy || !sure} onClick={() => void act("erase")}>
                  {t("erase")}
                </button>
              </div>
            </section>
          )}
        </div>
        <aside>
          <Timeline id={user.id} users={users} reload={changes} />
        </aside>
      </div>
    </section>
  );
}

export function Teams() {
  const { t } = useI18n();
  const users = useUsers();
  return (
    <RecordList<Team>
      title={t("teams")}
      path="/api/teams"
      sort="name"
      nameOf={(x) => x.name}
      toolbar={
        <Link className="button" to="/admin/teams/new">
          {t("newTeam")}
        </Link>
      }
      columns={[
        { key: "name", label: t("name"), sort: "name", text: (x) => x.name, cell: (x) => <Link to={`/admin/teams/${x.id}`}>{x.name}</Link> },
        { key: "description", label: t("description"), cell: (x) => x.description ?? "" },
        { key: "manager", label: t("manager"), cell: (x) => nameOf(users, x.managerId) },
      ]}
    />
  );
}

export function TeamPage() {
  const { t } = useI18n();
  return (
    <RecordPage
      path="/api/teams"
      list="/admin/teams"
      newTitle={t("newTeam")}
      fields={[
        { name: "name", label: t("name"), required: true },
        { name: "description", label: t("description"), type: "textarea" },
        { name: "managerId", label: t("manager"), type: "user" },
      ]}
    />
  );
}

export function AuditLog() {
  const { t, lang } = useI18n();
  const { user } = useAuth();
  const users = useUsers();
  const [check, setCheck] = useState<{ intact: boolean; events: number; brokenAt?: number; reason?: string } | null>(null);
  const { error, busy, run } = useAction();
  const date = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "medium" });
  return (
    <>
      <RecordList<AuditEvent>
        title={t("auditLog")}
        path="/api/audit"
        sort="-seq"
        nameOf={(e) => `#${e.seq}`}
        toolbar={
          user?.role === "admin" && (
            <button type="button" className="secondary" disabled={busy} onClick={() => void run(async () => setCheck(await api("GET", "/api/audit/verify")))}>
              {t("verifyChain")}
            </button>
          )
        }
        filterFields={[
          { field: "actorId", label: t("actor"), type: "user" },
          { field: "action", label: t("action"), type: "text" },
          { field: "entityType", label: t("entityType"), type: "text" },
          { field: "at", label: t("when"), type: "date" },
        ]}
        columns={[
          { key: "seq", label: "#", sort: "seq", numeric: true, cell: (e) => String(e.seq) },
          { key: "at", label: t("when"), sort: "at", cell: (e) => date.format(new Date(e.at)) },
          { key: "actor", label: t("actor"), cell: (e) => (e.actorId ? nameOf(users, e.actorId) : t("system")) },
          { key: "action", label: t("action"), sort: "action", cell: (e) => e.action },
          { key: "entity", label: t("entityType"), cell: (e) => e.entityType },
          { key: "entityId", label: t("record"), cell: (e) => e.entityId?.slice(0, 8) ?? "" },
        ]}
      />
      <FormError error={error} />
      {check && (
        <p role="status" className={check.intact ? "notice" : "alert"}>
          {check.intact ? t("chainIntact", { n: String(check.events) }) : t("chainBroken", { at: String(check.brokenAt ?? "?"), reason: check.reason ?? "" })}
        </p>
      )}
    </>
  );
}
