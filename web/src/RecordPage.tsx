// One record of any kind: a form to create or edit it from a list of fields (field errors
// at their field; a version conflict offers their version or an overwrite), delete and
// restore, and its timeline (what the audit log, and the kind's own history, say).
import { useEffect, useId, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, ApiError, minorPerMajor } from "./api";

export { minorPerMajor };
import { useAuth } from "./auth";
import { useI18n, type Key } from "./i18n";
import { Attachments } from "./Attachments";
import { CustomFields, customOf, objectOf, type CustomDraft } from "./CustomFields";
import { itemsOf, LineItems, linesOf, type LineDraft } from "./LineItems";
import { RecordPicker, RecordsPicker, RelatedPicker } from "./Pickers";
import { Timeline, type Entry } from "./Timeline";
import { Field, fieldError, fieldErrorUnder, FormError, SelectField, useAction } from "./ui";
import { useUsers } from "./users";

/** How a field is edited and sent. */
export interface FieldSpec {
  /** The API's field name. */
  name: string;
  label: string;
  /** `company`: a company picked by name; `contacts`: contacts picked by name; `related`:
   * what a task is about; `lines`: line items (with `currencyField`); `custom`: custom
   * fields. Those past `company` are held in the form as JSON text. */
  type?: "text" | "email" | "tel" | "number" | "date" | "textarea" | "select" | "user" | "money" | "company" | "contacts" | "related" | "lines" | "custom";
  required?: boolean;
  /** For `select`: the values and their labels. */
  choices?: { value: string; label: string }[];
  /** For `money`: the field holding the currency (amounts are sent in minor units). */
  currencyField?: string;
}

export type Rec = { id: string; version: number; deletedAt?: string | null; name?: string } & Record<string, unknown>;
type Draft = Record<string, string>;

/** The record's values as the form's strings. */
export function draftOf(fields: FieldSpec[], r: Record<string, unknown> | null): Draft {
  const d: Draft = {};
  const per = (f: FieldSpec) => minorPerMajor(String(r?.[f.currencyField ?? "currency"] ?? "EUR"));
  for (const f of fields) {
    const v = r?.[f.name];
    if (f.type === "contacts") d[f.name] = JSON.stringify(Array.isArray(v) ? v : []);
    else if (f.type === "related") d[f.name] = JSON.stringify(v ?? null);
    else if (f.type === "lines") d[f.name] = JSON.stringify(linesOf(v, per(f)));
    else if (f.type === "custom") d[f.name] = JSON.stringify(customOf(v));
    else if (v === null || v === undefined) d[f.name] = "";
    else if (f.type === "money") d[f.name] = String(Number(v) / per(f));
    else if (f.type === "date") d[f.name] = String(v).slice(0, 10);
    else d[f.name] = String(v);
  }
  return d;
}

/** A field's JSON text in the form, read back (`fallback` when it does not parse). */
function parsed<T>(text: string | undefined, fallback: T): T {
  try {
    return text ? (JSON.parse(text) as T) : fallback;
  } catch {
    return fallback;
  }
}

/** The body of a save: empty optional fields cleared (null), an empty choice left out,
 * numbers as numbers, money in minor units. */
export function bodyOf(fields: FieldSpec[], d: Draft, version?: number): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  const per = (f: FieldSpec) => minorPerMajor((d[f.currencyField ?? "currency"] ?? "").trim() || "EUR");
  for (const f of fields) {
    const v = (d[f.name] ?? "").trim();
    if (f.type === "select" || f.type === "user") {
      if (v !== "") body[f.name] = v;
    } else if (f.type === "company") body[f.name] = v === "" ? null : v;
    else if (f.type === "contacts") body[f.name] = parsed<string[]>(v, []);
    else if (f.type === "related") body[f.name] = parsed<unknown>(v, null);
    else if (f.type === "lines") body[f.name] = itemsOf(parsed<LineDraft[]>(v, []), per(f));
    else if (f.type === "custom") body[f.name] = objectOf(parsed<CustomDraft[]>(v, []));
    else if (f.required) body[f.name] = v;
    else if (v === "") body[f.name] = null;
    else if (f.type === "number") body[f.name] = Number.isFinite(Number(v)) ? Number(v) : v;
    else if (f.type === "money") {
      body[f.name] = Number.isFinite(Number(v)) ? Math.round(Number(v) * per(f)) : v;
    } else body[f.name] = v;
  }
  if (version !== undefined) body.version = version;
  return body;
}

export function RecordPage({
  path,
  list,
  fields,
  newTitle,
  deletedText = "recordDeleted",
  conflictText = "recordConflict",
  history,
  aside,
  attachments = false,
}: {
  /** The API collection (`/api/deals`). */
  path: string;
  /** The list screen (`/deals`). */
  list: string;
  fields: FieldSpec[];
  newTitle: string;
  deletedText?: Key;
  conflictText?: Key;
  /** More timeline entries of the kind (a deal's stage changes, a contact's interactions). */
  history?: (id: string) => Promise<Entry[]>;
  /** Shown beside the form of a saved record; `adopt` shows a newer version of it. */
  aside?: (r: Rec, adopt: (r: Rec) => void) => ReactNode;
  /** Files can be attached to the record (`{path}/{id}/attachments`). */
  attachments?: boolean;
}) {
  const { id } = useParams();
  const isNew = id === "new";
  const { t } = useI18n();
  const navigate = useNavigate();
  const { user } = useAuth();
  const users = useUsers();
  // The standard policy: managers and admins restore deleted records, users do not.
  const canRestore = user?.role === "admin" || user?.role === "manager";
  const [record, setRecord] = useState<Rec | null>(null);
  const [draft, setDraft] = useState<Draft>(() => draftOf(fields, null));
  const { error, setError, busy, run: act } = useAction();
  const [saved, setSaved] = useState(false);
  const [changes, setChanges] = useState(0);
  const titleId = useId();
  useEffect(() => {
    if (isNew || !id) return;
    api<Rec>("GET", `${path}/${id}`).then((r) => {
      setRecord(r);
      setDraft(draftOf(fields, r));
    }, setError);
    // The fields are the screen's own and do not change while it shows.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [id, isNew, path, setError]);

  const adopt = (r: Rec) => {
    setRecord(r);
    setDraft(draftOf(fields, r));
    setChanges((n) => n + 1);
  };
  const run = (action: () => Promise<void>) => {
    setSaved(false);
    return act(action);
  };
  const save = (version?: number) =>
    run(async () => {
      if (isNew) {
        const r = await api<Rec>("POST", path, bodyOf(fields, draft));
        navigate(`${list}/${r.id}`, { replace: true });
        return;
      }
      adopt(await api<Rec>("PATCH", `${path}/${id}`, bodyOf(fields, draft, version ?? record?.version)));
      setSaved(true);
    });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void save();
  };
  const conflict = error instanceof ApiError && error.code === "version_conflict" ? error : null;
  const theirs = conflict?.body.current as Rec | undefined;
  const theirVersion = conflict?.body.currentVersion as number | undefined;
  const set = (k: string) => (e: { target: { value: string } }) => setDraft({ ...draft, [k]: e.target.value });

  if (!isNew && !record) {
    return error instanceof ApiError && error.status === 404 ? (
      <section>
        <p role="alert">{t("notFound")}</p>
        <Link to={list}>{t("back")}</Link>
      </section>
    ) : error ? (
      <FormError error={error} />
    ) : (
      <p role="status">{t("loading")}</p>
    );
  }
  const deleted = !!record?.deletedAt;
  const input = (f: FieldSpec) => {
    const err = fieldError(error, f.name);
    const put = (value: string) => setDraft((d) => ({ ...d, [f.name]: value }));
    if (f.type === "company") {
      return <RecordPicker key={f.name} label={f.label} kind="companies" value={draft[f.name] ?? ""} onChange={put} error={err} />;
    }
    if (f.type === "contacts") {
      const ids = parsed<string[]>(draft[f.name], []);
      return <RecordsPicker key={f.name} label={f.label} kind="contacts" value={ids} onChange={(v) => put(JSON.stringify(v))} error={fieldErrorUnder(error, f.name)} />;
    }
    if (f.type === "related") {
      const v = parsed<{ type: string; id: string } | null>(draft[f.name], null);
      return <RelatedPicker key={f.name} label={f.label} value={v} onChange={(x) => put(JSON.stringify(x))} error={fieldErrorUnder(error, f.name)} />;
    }
    if (f.type === "lines") {
      return (
        <LineItems
          key={f.name}
          label={f.label}
          field={f.name}
          lines={parsed<LineDraft[]>(draft[f.name], [])}
          currency={(draft[f.currencyField ?? "currency"] ?? "").trim().toUpperCase()}
          onChange={(v) => put(JSON.stringify(v))}
          errorOf={(name) => fieldError(error, name)}
        />
      );
    }
    if (f.type === "custom") {
      const rows = parsed<CustomDraft[]>(draft[f.name], []);
      return <CustomFields key={f.name} label={f.label} rows={rows} onChange={(v) => put(JSON.stringify(v))} error={fieldErrorUnder(error, f.name)} />;
    }
    if (f.type === "select" || f.type === "user") {
      const options = f.type === "user" ? users.map((u) => ({ value: u.id, label: u.username })) : (f.choices ?? []);
      // The current owner stays shown even when the caller may not list them.
      const current = draft[f.name];
      if (f.type === "user" && current && !options.some((o) => o.value === current)) options.unshift({ value: current, label: current.slice(0, 8) });
      return <SelectField key={f.name} label={f.label} value={draft[f.name] ?? ""} onChange={(v) => setDraft({ ...draft, [f.name]: v })} options={options} error={err} blank />;
    }
    if (f.type === "textarea") {
      const inputId = `${titleId}-${f.name}`;
      const errId = `${inputId}-error`;
      return (
        <div className="field" key={f.name}>
          <label htmlFor={inputId}>{f.label}</label>
          <textarea
            id={inputId}
            rows={4}
            value={draft[f.name] ?? ""}
            onChange={set(f.name)}
            aria-invalid={err ? true : undefined}
            aria-describedby={err ? errId : undefined}
          />
          {err && (
            <p id={errId} className="field-error">
              {err}
            </p>
          )}
        </div>
      );
    }
    return (
      <Field
        key={f.name}
        label={f.label}
        name={f.name}
        required={f.required}
        type={f.type === "money" ? "number" : (f.type ?? "text")}
        step={f.type === "money" ? "0.01" : undefined}
        value={draft[f.name] ?? ""}
        onChange={set(f.name)}
        error={err}
      />
    );
  };
  return (
    <section aria-labelledby={titleId} className="record-page">
      <p>
        <Link to={list}>{t("back")}</Link>
      </p>
      <h1 id={titleId}>{isNew ? newTitle : String(record?.name ?? "")}</h1>
      {deleted && (
        <div role="status" className="alert">
          <p>{t(deletedText)}</p>
          {canRestore ? (
            <button type="button" disabled={busy} onClick={() => void run(async () => adopt(await api<Rec>("POST", `${path}/${id}/restore`)))}>
              {t("restore")}
            </button>
          ) : (
            <p>{t("askRestore")}</p>
          )}
        </div>
      )}
      {conflict ? (
        <div role="alert" className="alert">
          <p>{t(conflictText)}</p>
          <div className="toolbar">
            {theirs && (
              <button
                type="button"
                onClick={() => {
                  adopt(theirs);
                  setError(null);
                }}
              >
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
        <FormError error={error} fields={fields.map((f) => f.name)} />
      )}
      <div className="record-body">
        <form onSubmit={submit} noValidate className="record">
          {fields.map(input)}
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
                    await api("DELETE", `${path}/${id}`, undefined, { "If-Match": `"${record?.version}"` });
                    if (record) adopt({ ...record, deletedAt: new Date().toISOString(), version: record.version + 1 });
                  })
                }
              >
                {t("deleteIt")}
              </button>
            )}
          </div>
          {saved && <p role="status">{t("saved")}</p>}
        </form>
        {record && id && (
          <aside>
            {aside?.(record, adopt)}
            {attachments && <Attachments path={path} id={id} readOnly={deleted} />}
            <Timeline id={id} users={users} history={history} reload={changes} />
          </aside>
        )}
      </div>
    </section>
  );
}
