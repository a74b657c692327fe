// One contact: a form to create or edit it (field errors at their field; a version
// conflict offers their version or an overwrite), delete and restore.
import { useEffect, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, LIFECYCLE_STAGES, type Contact } from "../api";
import { useAuth } from "../auth";
import { useI18n } from "../i18n";
import { Field, fieldError, FormError, useAction } from "../ui";

type Draft = { name: string; email: string; phoneNumber: string; jobTitle: string; leadSource: string; lifecycleStage: string };

const empty: Draft = { name: "", email: "", phoneNumber: "", jobTitle: "", leadSource: "", lifecycleStage: "" };

function draftOf(c: Contact): Draft {
  return {
    name: c.name,
    email: c.email ?? "",
    phoneNumber: c.phoneNumber ?? "",
    jobTitle: c.jobTitle ?? "",
    leadSource: c.leadSource ?? "",
    lifecycleStage: c.lifecycleStage ?? "",
  };
}

/** The body of a save: empty fields cleared (null), the stage left out when none. */
function bodyOf(d: Draft, version?: number) {
  const opt = (v: string) => (v.trim() === "" ? null : v.trim());
  return {
    name: d.name.trim(),
    email: opt(d.email),
    phoneNumber: opt(d.phoneNumber),
    jobTitle: opt(d.jobTitle),
    leadSource: opt(d.leadSource),
    ...(d.lifecycleStage ? { lifecycleStage: d.lifecycleStage } : {}),
    ...(version !== undefined ? { version } : {}),
  };
}

export function ContactPage() {
  const { id } = useParams();
  const isNew = id === "new";
  const { t } = useI18n();
  const navigate = useNavigate();
  const { user } = useAuth();
  // The standard policy: managers and admins restore deleted records, users do not.
  const canRestore = user?.role === "admin" || user?.role === "manager";
  const [contact, setContact] = useState<Contact | null>(null);
  const [draft, setDraft] = useState<Draft>(empty);
  const { error, setError, busy, run: act } = useAction();
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    if (isNew || !id) return;
    api<Contact>("GET", `/api/contacts/${id}`).then((c) => {
      setContact(c);
      setDraft(draftOf(c));
    }, setError);
  }, [id, isNew, setError]);

  const run = (action: () => Promise<void>) => {
    setSaved(false);
    return act(action);
  };
  const save = (version?: number) =>
    run(async () => {
      if (isNew) {
        const c = await api<Contact>("POST", "/api/contacts", bodyOf(draft));
        navigate(`/contacts/${c.id}`, { replace: true });
        return;
      }
      const c = await api<Contact>("PATCH", `/api/contacts/${id}`, bodyOf(draft, version ?? contact?.version));
      setContact(c);
      setDraft(draftOf(c));
      setSaved(true);
    });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save();
  };
  const conflict = error instanceof ApiError && error.code === "version_conflict" ? error : null;
  const theirs = conflict?.body.current as Contact | undefined;
  const theirVersion = conflict?.body.currentVersion as number | undefined;
  const set = (k: keyof Draft) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });

  if (!isNew && !contact) {
    return error instanceof ApiError && error.status === 404 ? (
      <section>
        <p role="alert">{t("notFound")}</p>
        <Link to="/contacts">{t("back")}</Link>
      </section>
    ) : (
      <FormError error={error} />
    );
  }
  const deleted = !!contact?.deletedAt;
  return (
    <section aria-labelledby="contact-title">
      <p>
        <Link to="/contacts">{t("back")}</Link>
      </p>
      <h1 id="contact-title">{isNew ? t("newContact") : contact?.name}</h1>
      {deleted && (
        <div role="status" className="alert">
          <p>{t("deleted")}</p>
          {canRestore ? (
            <button type="button" disabled={busy} onClick={() => void run(async () => setContact(await api<Contact>("POST", `/api/contacts/${id}/restore`)))}>
              {t("restore")}
            </button>
          ) : (
            <p>{t("askRestore")}</p>
          )}
        </div>
      )}
      {conflict ? (
        <div role="alert" className="alert">
          <p>{t("conflict")}</p>
          <div className="toolbar">
            {theirs && (
              <button type="button" onClick={() => { setContact(theirs); setDraft(draftOf(theirs)); setError(null); }}>
                {t("reloadTheirs")}
              </button>
            )}
            {theirVersion !== undefined && (
              <button type="button" onClick={() => void save(theirVersion)}>
                {t("overwrite")}
              </button>
            )}
          </div>
        </div>
      ) : (
        <FormError error={error} fields={["name", "email", "phoneNumber", "jobTitle", "leadSource", "lifecycleStage"]} />
      )}
      <form onSubmit={submit} noValidate className="record">
        <Field label={t("name")} name="name" required value={draft.name} onChange={set("name")} error={fieldError(error, "name")} />
        <Field label={t("email")} name="email" type="email" value={draft.email} onChange={set("email")} error={fieldError(error, "email")} />
        <Field label={t("phone")} name="phoneNumber" type="tel" value={draft.phoneNumber} onChange={set("phoneNumber")} error={fieldError(error, "phoneNumber")} />
        <Field label={t("jobTitle")} name="jobTitle" value={draft.jobTitle} onChange={set("jobTitle")} error={fieldError(error, "jobTitle")} />
        <Field label={t("leadSource")} name="leadSource" value={draft.leadSource} onChange={set("leadSource")} error={fieldError(error, "leadSource")} />
        <div className="field">
          <label htmlFor="lifecycleStage">{t("stage")}</label>
          <select id="lifecycleStage" value={draft.lifecycleStage} onChange={set("lifecycleStage")}>
            <option value="">—</option>
            {LIFECYCLE_STAGES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="toolbar">
          <button type="submit" disabled={busy || deleted}>
            {t("save")}
          </button>
          {!isNew && !deleted && (
            <button
              type="button"
              className="danger"
              disabled={busy}
              onClick={() =>
                void run(async () => {
                  await api("DELETE", `/api/contacts/${id}`, undefined, { "If-Match": `"${contact?.version}"` });
                  if (contact) setContact({ ...contact, deletedAt: new Date().toISOString(), version: contact.version + 1 });
                })
              }
            >
              {t("deleteIt")}
            </button>
          )}
        </div>
        {saved && <p role="status">{t("saved")}</p>}
      </form>
    </section>
  );
}
