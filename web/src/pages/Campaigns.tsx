// Email campaigns: the campaigns (audience from segments, a template, scheduled or sent
// now, paused, resumed, cancelled; their figures and recipients as they go out), the
// templates (MJML with placeholders, previewed for a contact, sent as a test), the
// segments (a filter over contacts and their companies, or a list; their size) and the
// suppressed addresses. Managers and admins change them; users read.
import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { api, LIFECYCLE_STAGES } from "../api";
import { Area as AreaPage, Table, useList, useMayEdit, useWhen } from "../areas";
import { ConditionRows } from "../FilterBar";
import { useI18n, type Key } from "../i18n";
import { toFilter, type Condition, type FilterField } from "../listing";
import type { components } from "../openapi";
import { RecordPicker, RecordsPicker } from "../Pickers";
import { Field, fieldError, FormError, SelectField, useAction } from "../ui";
import { useUsers } from "../users";

type Schemas = components["schemas"];
type Campaign = Schemas["Campaign"];
type Template = Schemas["CampaignTemplate"];
type Segment = Schemas["ContactSegment"];
type Stats = Schemas["CampaignStats"];
type Recipient = Schemas["CampaignRecipient"];
type Suppression = Schemas["Suppression"];

const RECIPIENT_STATES = ["queued", "sending", "sent", "failed", "interrupted", "skipped"];
const SUPPRESSION_REASONS = ["unsubscribed", "bounced", "complained", "manual"];

/** The campaigns area's page, with its tabs. */
function Area({ title, actions, children }: { title: string; actions?: ReactNode; children: ReactNode }) {
  const { t } = useI18n();
  const tabs: [string, string][] = [
    ["/campaigns", t("campaigns")],
    ["/campaigns/templates", t("templates")],
    ["/campaigns/segments", t("segments")],
    ["/campaigns/suppressions", t("suppressions")],
  ];
  return (
    <AreaPage label={t("campaigns")} tabs={tabs} title={title} actions={actions}>
      {children}
    </AreaPage>
  );
}

function StateBadge({ state }: { state: string }) {
  const { t } = useI18n();
  return <span className={`state state-${state}`}>{t(`campaignState.${state}` as Key)}</span>;
}

export function CampaignList() {
  const { t } = useI18n();
  const when = useWhen();
  const mayEdit = useMayEdit();
  const { rows, error } = useList<Campaign>("/api/campaigns");
  return (
    <Area
      title={t("campaigns")}
      actions={
        mayEdit && (
          <Link className="button" to="/campaigns/new">
            {t("newCampaign")}
          </Link>
        )
      }
    >
      <FormError error={error} />
      {!rows && !error && <p role="status">{t("loading")}</p>}
      <Table
        rows={rows}
        empty={t("noCampaigns")}
        columns={[
          { label: t("name"), cell: (c) => <Link to={`/campaigns/${c.id}`}>{c.name}</Link> },
          { label: t("status"), cell: (c) => <StateBadge state={c.state} /> },
          { label: t("scheduledFor"), cell: (c) => when(c.scheduledAt) },
          { label: t("startedAt"), cell: (c) => when(c.startedAt) },
          { label: t("audience"), numeric: true, cell: (c) => (c.frozen ? c.audience : "—") },
        ]}
      />
    </Area>
  );
}

/** Checkboxes of the segments, those in `chosen` ticked. */
function SegmentChoice({
  legend,
  segments,
  chosen,
  onChange,
  error,
  disabled,
}: {
  legend: string;
  segments: Segment[];
  chosen: string[];
  onChange: (ids: string[]) => void;
  error?: string;
  disabled?: boolean;
}) {
  const { t } = useI18n();
  return (
    <fieldset className="choices">
      <legend>{legend}</legend>
      {segments.length === 0 && <p>{t("noSegments")}</p>}
      {segments.map((s) => (
        <label key={s.id} className="check">
          <input
            type="checkbox"
            disabled={disabled}
            checked={chosen.includes(s.id)}
            onChange={(e) => onChange(e.target.checked ? [...chosen, s.id] : chosen.filter((x) => x !== s.id))}
          />{" "}
          {s.name}
        </label>
      ))}
      {error && <p className="field-error">{error}</p>}
    </fieldset>
  );
}

interface CampaignDraft {
  name: string;
  templateId: string;
  segmentIds: string[];
  excludeSegmentIds: string[];
  fromName: string;
}

const percent = (lang: string) => new Intl.NumberFormat(lang, { style: "percent", maximumFractionDigits: 1 });

function StatsPanel({ stats }: { stats: Stats }) {
  const { t, lang } = useI18n();
  const pct = percent(lang);
  const n = new Intl.NumberFormat(lang);
  const figures: [Key, string][] = [
    ["audience", n.format(stats.audience)],
    ["statSent", n.format(stats.sent)],
    ["statQueued", n.format(stats.queued)],
    ["statOpened", `${n.format(stats.opened)} (${pct.format(stats.openRate)})`],
    ["statClicked", `${n.format(stats.clicked)} (${pct.format(stats.clickRate)})`],
    ["statBounced", `${n.format(stats.bounced)} (${pct.format(stats.bounceRate)})`],
    ["statUnsubscribed", `${n.format(stats.unsubscribed)} (${pct.format(stats.unsubscribeRate)})`],
    ["statFailed", n.format(stats.failed)],
    ["statSkipped", n.format(stats.skipped)],
  ];
  return (
    <section aria-labelledby="stats-title" className="stats">
      <h2 id="stats-title">{t("campaignFigures")}</h2>
      <dl>
        {figures.map(([k, v]) => (
          <div key={k}>
            <dt>{t(k)}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

function Recipients({ id, reload }: { id: string; reload: number }) {
  const { t } = useI18n();
  const when = useWhen();
  const [state, setState] = useState("");
  const q = new URLSearchParams({ limit: "50" });
  if (state) q.set("state", state);
  const { rows, error } = useList<Recipient>(`/api/campaigns/${id}/recipients?${q}`, reload);
  return (
    <section aria-labelledby="recipients-title">
      <h2 id="recipients-title">{t("recipients")}</h2>
      <SelectField
        label={t("recipientState")}
        value={state}
        onChange={setState}
        blank
        options={RECIPIENT_STATES.map((s) => ({ value: s, label: t(`recipientState.${s}` as Key) }))}
      />
      <FormError error={error} />
      <Table
        rows={rows}
        empty={t("noRecipients")}
        columns={[
          { label: t("email"), cell: (r) => <Link to={`/contacts/${r.contactId}`}>{r.email}</Link> },
          { label: t("status"), cell: (r) => t(`recipientState.${r.state}` as Key) },
          { label: t("sentAt"), cell: (r) => when(r.sentAt) },
          { label: t("opens"), numeric: true, cell: (r) => r.opens },
          { label: t("clicks"), numeric: true, cell: (r) => r.clicks },
          { label: t("bounce"), cell: (r) => r.bounce ?? "" },
        ]}
      />
    </section>
  );
}

export function CampaignPage() {
  const { id } = useParams();
  const isNew = id === "new";
  const { t } = useI18n();
  const when = useWhen();
  const navigate = useNavigate();
  const mayEdit = useMayEdit();
  const [campaign, setCampaign] = useState<Campaign | null>(null);
  const [draft, setDraft] = useState<CampaignDraft>({ name: "", templateId: "", segmentIds: [], excludeSegmentIds: [], fromName: "" });
  const [stats, setStats] = useState<Stats | null>(null);
  const [at, setAt] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const templates = useList<Template>("/api/campaign-templates").rows ?? [];
  const segments = useList<Segment>("/api/segments").rows ?? [];
  const { error, setError, busy, run } = useAction();
  const adopt = useCallback((c: Campaign) => {
    setCampaign(c);
    setDraft({ name: c.name, templateId: c.templateId, segmentIds: c.segmentIds, excludeSegmentIds: c.excludeSegmentIds, fromName: c.fromName ?? "" });
  }, []);
  useEffect(() => {
    if (isNew || !id) return;
    api<Campaign>("GET", `/api/campaigns/${id}`).then(adopt, setError);
  }, [id, isNew, adopt, setError, tick]);
  // While it sends, its figures and state are read again every few seconds.
  const live = campaign?.state === "sending" || campaign?.state === "scheduled";
  useEffect(() => {
    if (!campaign?.frozen && !live) return;
    api<Stats>("GET", `/api/campaigns/${campaign?.id}/stats`).then(setStats, () => {});
    if (!live) return;
    const timer = setTimeout(() => setTick((n) => n + 1), 3000);
    return () => clearTimeout(timer);
  }, [campaign, live]);
  const editable = mayEdit && (isNew || campaign?.state === "draft" || campaign?.state === "scheduled");
  const save = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void run(async () => {
      const body = { ...draft, name: draft.name.trim(), fromName: draft.fromName.trim() || null };
      if (isNew) {
        const made = await api<Campaign>("POST", "/api/campaigns", body);
        navigate(`/campaigns/${made.id}`, { replace: true });
        return;
      }
      adopt(await api<Campaign>("PATCH", `/api/campaigns/${id}`, { ...body, version: campaign?.version }));
      setNotice(t("saved"));
    });
  };
  const step = (path: string, body?: unknown, done?: string) =>
    void run(async () => {
      setNotice(null);
      adopt(await api<Campaign>("POST", `/api/campaigns/${id}/${path}`, body));
      if (done) setNotice(done);
    });
  if (!isNew && !campaign) return error ? <FormError error={error} /> : <p role="status">{t("loading")}</p>;
  const state = campaign?.state ?? "draft";
  return (
    <Area title={isNew ? t("newCampaign") : (campaign?.name ?? "")} actions={campaign && <StateBadge state={campaign.state} />}>
      <p>
        <Link to="/campaigns">{t("back")}</Link>
      </p>
      <FormError error={error} fields={["name", "templateId", "segmentIds", "excludeSegmentIds", "fromName"]} />
      {notice && <p role="status">{notice}</p>}
      {campaign?.pausedReason && (
        <p role="alert" className="alert">
          {t("pausedBecause", { reason: campaign.pausedReason })}
        </p>
      )}
      <div className="record-body">
        <form onSubmit={save} noValidate className="record">
          <Field label={t("name")} required disabled={!editable} value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} error={fieldError(error, "name")} />
          <SelectField
            label={t("template")}
            value={draft.templateId}
            disabled={!editable}
            blank
            onChange={(v) => setDraft({ ...draft, templateId: v })}
            options={templates.map((x) => ({ value: x.id, label: x.name }))}
            error={fieldError(error, "templateId")}
          />
          <SegmentChoice
            legend={t("sendTo")}
            segments={segments}
            chosen={draft.segmentIds}
            disabled={!editable}
            onChange={(v) => setDraft({ ...draft, segmentIds: v })}
            error={fieldError(error, "segmentIds")}
          />
          <SegmentChoice
            legend={t("excludeSegments")}
            segments={segments}
            chosen={draft.excludeSegmentIds}
            disabled={!editable}
            onChange={(v) => setDraft({ ...draft, excludeSegmentIds: v })}
            error={fieldError(error, "excludeSegmentIds")}
          />
          <Field label={t("fromName")} disabled={!editable} value={draft.fromName} onChange={(e) => setDraft({ ...draft, fromName: e.target.value })} error={fieldError(error, "fromName")} />
          {editable && (
            <button type="submit" disabled={busy}>
              {isNew ? t("createCampaign") : t("save")}
            </button>
          )}
        </form>
        {campaign && (
          <aside>
            <dl className="facts">
              <dt>{t("scheduledFor")}</dt>
              <dd>{when(campaign.scheduledAt)}</dd>
              <dt>{t("startedAt")}</dt>
              <dd>{when(campaign.startedAt)}</dd>
              <dt>{t("finishedAt")}</dt>
              <dd>{when(campaign.finishedAt)}</dd>
            </dl>
            {mayEdit && (
              <div className="lifecycle">
                {state === "draft" && (
                  <>
                    <button type="button" disabled={busy} onClick={() => step("schedule", {}, t("sendingNow"))}>
                      {t("sendNow")}
                    </button>
                    <div className="field">
                      <label htmlFor="schedule-at">{t("scheduleAt")}</label>
                      <input id="schedule-at" type="datetime-local" value={at} onChange={(e) => setAt(e.target.value)} />
                    </div>
                    <button
                      type="button"
                      className="secondary"
                      disabled={busy || !at}
                      onClick={() => step("schedule", { at: new Date(at).toISOString() }, t("scheduledNotice"))}
                    >
                      {t("schedule")}
                    </button>
                  </>
                )}
                {(state === "scheduled" || state === "sending") && (
                  <button type="button" className="secondary" disabled={busy} onClick={() => step("pause")}>
                    {t("pause")}
                  </button>
                )}
                {state === "paused" && (
                  <button type="button" disabled={busy} onClick={() => step("resume")}>
                    {t("resume")}
                  </button>
                )}
                {["scheduled", "sending", "paused"].includes(state) && (
                  <button type="button" className="danger" disabled={busy} onClick={() => step("cancel")}>
                    {t("cancelCampaign")}
                  </button>
                )}
                {(state === "draft" || state === "cancelled") && (
                  <button
                    type="button"
                    className="danger"
                    disabled={busy}
                    onClick={() =>
                      void run(async () => {
                        await api("DELETE", `/api/campaigns/${id}`, undefined, { "If-Match": `"${campaign.version}"` });
                        navigate("/campaigns", { replace: true });
                      })
                    }
                  >
                    {t("deleteIt")}
                  </button>
                )}
              </div>
            )}
          </aside>
        )}
      </div>
      {stats && <StatsPanel stats={stats} />}
      {/* Read again as it goes out, and once more when it ends. */}
      {campaign?.frozen && id && <Recipients key={campaign.state} id={id} reload={tick} />}
    </Area>
  );
}

export function TemplateList() {
  const { t } = useI18n();
  const when = useWhen();
  const mayEdit = useMayEdit();
  const { rows, error } = useList<Template>("/api/campaign-templates");
  return (
    <Area
      title={t("templates")}
      actions={
        mayEdit && (
          <Link className="button" to="/campaigns/templates/new">
            {t("newTemplate")}
          </Link>
        )
      }
    >
      <FormError error={error} />
      <Table
        rows={rows}
        empty={t("noTemplates")}
        columns={[
          { label: t("name"), cell: (x) => <Link to={`/campaigns/templates/${x.id}`}>{x.name}</Link> },
          { label: t("subject"), cell: (x) => x.subject },
          { label: t("updated"), cell: (x) => when(x.updatedAt) },
        ]}
      />
    </Area>
  );
}

/** A starting design for a new template. */
export const STARTER_MJML = `<mjml>
  <mj-body>
    <mj-section>
      <mj-column>
        <mj-text font-size="20px">Hello {{ contact.first_name | default("there") }},</mj-text>
        <mj-text>…</mj-text>
        <mj-button href="https://example.com">Read more</mj-button>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>`;

type Preview = Schemas["PreviewView"];

export function TemplatePage() {
  const { id } = useParams();
  const isNew = id === "new";
  const { t } = useI18n();
  const navigate = useNavigate();
  const mayEdit = useMayEdit();
  const [template, setTemplate] = useState<Template | null>(null);
  const [draft, setDraft] = useState({ name: "", subject: "", mjml: STARTER_MJML, text: "" });
  const [contactId, setContactId] = useState("");
  const [preview, setPreview] = useState<Preview | null>(null);
  const [to, setTo] = useState("");
  const [notice, setNotice] = useState<string | null>(null);
  const { error, setError, busy, run } = useAction();
  const adopt = (x: Template) => {
    setTemplate(x);
    setDraft({ name: x.name, subject: x.subject, mjml: x.mjml, text: x.text ?? "" });
  };
  useEffect(() => {
    if (isNew || !id) return;
    api<Template>("GET", `/api/campaign-templates/${id}`).then(adopt, setError);
  }, [id, isNew, setError]);
  const save = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void run(async () => {
      const body = { name: draft.name.trim(), subject: draft.subject, mjml: draft.mjml, text: draft.text.trim() ? draft.text : null };
      if (isNew) {
        const made = await api<Template>("POST", "/api/campaign-templates", body);
        navigate(`/campaigns/templates/${made.id}`, { replace: true });
        return;
      }
      adopt(await api<Template>("PATCH", `/api/campaign-templates/${id}`, { ...body, version: template?.version }));
      setNotice(t("saved"));
    });
  };
  const previewIt = () =>
    void run(async () => {
      setNotice(null);
      setPreview(await api<Preview>("POST", `/api/campaign-templates/${id}/preview`, contactId ? { contactId } : {}));
    });
  const testSend = () =>
    void run(async () => {
      setNotice(null);
      await api("POST", `/api/campaign-templates/${id}/test-send`, { to: to.trim(), ...(contactId ? { contactId } : {}) });
      setNotice(t("testSent", { to: to.trim() }));
    });
  if (!isNew && !template) return error ? <FormError error={error} /> : <p role="status">{t("loading")}</p>;
  const area = (name: "mjml" | "text", label: string, rows: number) => {
    const err = fieldError(error, name);
    return (
      <div className="field">
        <label htmlFor={`tpl-${name}`}>{label}</label>
        <textarea
          id={`tpl-${name}`}
          className="code"
          rows={rows}
          disabled={!mayEdit}
          value={draft[name]}
          onChange={(e) => setDraft({ ...draft, [name]: e.target.value })}
          aria-invalid={err ? true : undefined}
          aria-describedby={err ? `tpl-${name}-error` : undefined}
        />
        {err && (
          <p id={`tpl-${name}-error`} className="field-error">
            {err}
          </p>
        )}
      </div>
    );
  };
  return (
    <Area title={isNew ? t("newTemplate") : (template?.name ?? "")}>
      <p>
        <Link to="/campaigns/templates">{t("back")}</Link>
      </p>
      <FormError error={error} fields={["name", "subject", "mjml", "text", "to", "contactId"]} />
      {notice && <p role="status">{notice}</p>}
      <div className="record-body">
        <form onSubmit={save} noValidate className="record wide">
          <Field label={t("name")} required disabled={!mayEdit} value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} error={fieldError(error, "name")} />
          <Field label={t("subject")} required disabled={!mayEdit} value={draft.subject} onChange={(e) => setDraft({ ...draft, subject: e.target.value })} error={fieldError(error, "subject")} />
          {area("mjml", t("mjml"), 16)}
          {area("text", t("textPart"), 5)}
          <p className="hint">{t("placeholdersHint")}</p>
          {mayEdit && (
            <button type="submit" disabled={busy}>
              {isNew ? t("createTemplate") : t("save")}
            </button>
          )}
        </form>
        {!isNew && (
          <aside className="preview">
            <RecordPicker label={t("previewFor")} kind="contacts" value={contactId} onChange={setContactId} error={fieldError(error, "contactId")} />
            <button type="button" className="secondary" disabled={busy} onClick={previewIt}>
              {t("preview")}
            </button>
            {mayEdit && (
              <div className="test-send">
                <Field label={t("testSendTo")} type="email" value={to} onChange={(e) => setTo(e.target.value)} error={fieldError(error, "to")} />
                <button type="button" className="secondary" disabled={busy || !to.trim()} onClick={testSend}>
                  {t("sendTest")}
                </button>
              </div>
            )}
            {preview && (
              <section aria-labelledby="preview-title">
                <h2 id="preview-title">{t("previewTitle")}</h2>
                <p>
                  <strong>{t("subject")}:</strong> {preview.subject}
                </p>
                {/* The email's HTML as a page of its own (its inline styles apply there, not
                    in the app's pages), sandboxed: no script, no access to the app. */}
                <iframe title={t("previewHtml")} sandbox="" src={preview.htmlUrl} className="email-frame" />
                <details>
                  <summary>{t("textPart")}</summary>
                  <pre>{preview.text}</pre>
                </details>
              </section>
            )}
          </aside>
        )}
      </div>
    </Area>
  );
}

export function SegmentList() {
  const { t } = useI18n();
  const when = useWhen();
  const mayEdit = useMayEdit();
  const { rows, error } = useList<Segment>("/api/segments");
  return (
    <Area
      title={t("segments")}
      actions={
        mayEdit && (
          <Link className="button" to="/campaigns/segments/new">
            {t("newSegment")}
          </Link>
        )
      }
    >
      <FormError error={error} />
      <Table
        rows={rows}
        empty={t("noSegments")}
        columns={[
          { label: t("name"), cell: (x) => <Link to={`/campaigns/segments/${x.id}`}>{x.name}</Link> },
          { label: t("description"), cell: (x) => x.description ?? "" },
          { label: t("updated"), cell: (x) => when(x.updatedAt) },
        ]}
      />
    </Area>
  );
}

export function SegmentPage() {
  const { id } = useParams();
  const isNew = id === "new";
  const { t } = useI18n();
  const navigate = useNavigate();
  const mayEdit = useMayEdit();
  const users = useUsers();
  const [segment, setSegment] = useState<Segment | null>(null);
  const [draft, setDraft] = useState({ name: "", description: "", filter: "", companyFilter: "", contactIds: [] as string[] });
  const [conditions, setConditions] = useState<Condition[]>([]);
  const [size, setSize] = useState<{ count: number; sample: { contactId?: string; email?: string }[] } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const { error, setError, busy, run } = useAction();
  const stage = (s: string) => t(`lifecycle.${s}` as Key);
  const fields: FilterField[] = [
    { field: "name", label: t("name"), type: "text" },
    { field: "email", label: t("email"), type: "text" },
    { field: "jobTitle", label: t("jobTitle"), type: "text" },
    { field: "leadSource", label: t("leadSource"), type: "text" },
    { field: "lifecycleStage", label: t("stage"), type: "choice", choices: LIFECYCLE_STAGES.map((s) => ({ value: s, label: stage(s) })) },
    { field: "ownerId", label: t("owner"), type: "user" },
    { field: "createdAt", label: t("created"), type: "date" },
  ];
  const adopt = (s: Segment) => {
    setSegment(s);
    setDraft({ name: s.name, description: s.description ?? "", filter: s.filter ?? "", companyFilter: s.companyFilter ?? "", contactIds: s.contactIds });
  };
  useEffect(() => {
    if (isNew || !id) return;
    api<Segment>("GET", `/api/segments/${id}`).then(adopt, setError);
    api<typeof size>("GET", `/api/segments/${id}/preview`).then(setSize, () => {});
  }, [id, isNew, setError]);
  const save = (e: FormEvent) => {
    e.preventDefault();
    setNotice(null);
    void run(async () => {
      const body = {
        name: draft.name.trim(),
        description: draft.description.trim() || null,
        filter: draft.filter.trim() || null,
        companyFilter: draft.companyFilter.trim() || null,
        contactIds: draft.contactIds,
      };
      if (isNew) {
        const made = await api<Segment>("POST", "/api/segments", body);
        navigate(`/campaigns/segments/${made.id}`, { replace: true });
        return;
      }
      adopt(await api<Segment>("PATCH", `/api/segments/${id}`, { ...body, version: segment?.version }));
      setSize(await api<typeof size>("GET", `/api/segments/${id}/preview`));
      setNotice(t("saved"));
    });
  };
  if (!isNew && !segment) return error ? <FormError error={error} /> : <p role="status">{t("loading")}</p>;
  return (
    <Area title={isNew ? t("newSegment") : (segment?.name ?? "")}>
      <p>
        <Link to="/campaigns/segments">{t("back")}</Link>
      </p>
      <FormError error={error} fields={["name", "description", "filter", "companyFilter", "contactIds"]} />
      {notice && <p role="status">{notice}</p>}
      <div className="record-body">
        <form onSubmit={save} noValidate className="record wide">
          <Field label={t("name")} required disabled={!mayEdit} value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} error={fieldError(error, "name")} />
          <Field label={t("description")} disabled={!mayEdit} value={draft.description} onChange={(e) => setDraft({ ...draft, description: e.target.value })} error={fieldError(error, "description")} />
          {mayEdit && (
            <fieldset className="conditions">
              <legend>{t("contactsWhere")}</legend>
              <ConditionRows
                fields={fields}
                users={users}
                conditions={conditions}
                onChange={(c) => {
                  setConditions(c);
                  setDraft((d) => ({ ...d, filter: toFilter(c, fields) ?? "" }));
                }}
              />
            </fieldset>
          )}
          <Field label={t("segmentFilter")} disabled={!mayEdit} value={draft.filter} onChange={(e) => setDraft({ ...draft, filter: e.target.value })} error={fieldError(error, "filter")} />
          <Field
            label={t("companyFilter")}
            disabled={!mayEdit}
            placeholder="industry[eq]:Software"
            value={draft.companyFilter}
            onChange={(e) => setDraft({ ...draft, companyFilter: e.target.value })}
            error={fieldError(error, "companyFilter")}
          />
          <RecordsPicker label={t("alsoTheseContacts")} kind="contacts" value={draft.contactIds} onChange={(v) => setDraft({ ...draft, contactIds: v })} error={fieldError(error, "contactIds")} />
          {mayEdit && (
            <button type="submit" disabled={busy}>
              {isNew ? t("createSegment") : t("save")}
            </button>
          )}
        </form>
        {size && (
          <aside>
            <p role="status">{t("segmentSize", { n: String(size.count) })}</p>
            <ul>
              {size.sample.map((s) => (
                <li key={s.contactId ?? s.email}>{s.contactId ? <Link to={`/contacts/${s.contactId}`}>{s.email}</Link> : s.email}</li>
              ))}
            </ul>
          </aside>
        )}
      </div>
    </Area>
  );
}

export function Suppressions() {
  const { t } = useI18n();
  const when = useWhen();
  const mayEdit = useMayEdit();
  const [reload, setReload] = useState(0);
  const { rows, error: listError } = useList<Suppression>("/api/suppressions?limit=200", reload);
  const [draft, setDraft] = useState({ email: "", reason: "manual", detail: "" });
  const { error, busy, run } = useAction();
  const add = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      await api("POST", "/api/suppressions", { email: draft.email.trim(), reason: draft.reason, detail: draft.detail.trim() || null });
      setDraft({ email: "", reason: "manual", detail: "" });
      setReload((n) => n + 1);
    });
  };
  const remove = (s: Suppression) =>
    void run(async () => {
      await api("DELETE", `/api/suppressions/${s.id}`);
      setReload((n) => n + 1);
    });
  return (
    <Area title={t("suppressions")}>
      <p>{t("suppressionsHelp")}</p>
      <FormError error={listError} />
      {mayEdit && (
        <form onSubmit={add} noValidate className="inline-form">
          <FormError error={error} fields={["email", "reason", "detail"]} />
          <Field label={t("email")} type="email" value={draft.email} onChange={(e) => setDraft({ ...draft, email: e.target.value })} error={fieldError(error, "email")} />
          <SelectField
            label={t("reason")}
            value={draft.reason}
            onChange={(v) => setDraft({ ...draft, reason: v })}
            options={SUPPRESSION_REASONS.map((r) => ({ value: r, label: t(`suppressionReason.${r}` as Key) }))}
            error={fieldError(error, "reason")}
          />
          <Field label={t("detail")} value={draft.detail} onChange={(e) => setDraft({ ...draft, detail: e.target.value })} error={fieldError(error, "detail")} />
          <button type="submit" disabled={busy || !draft.email.trim()}>
            {t("suppress")}
          </button>
        </form>
      )}
      <Table
        rows={rows}
        empty={t("noSuppressions")}
        columns={[
          { label: t("email"), cell: (x) => x.email },
          { label: t("reason"), cell: (x) => t(`suppressionReason.${x.reason}` as Key) },
          { label: t("detail"), cell: (x) => x.detail ?? "" },
          { label: t("since"), cell: (x) => when(x.createdAt) },
          mayEdit && {
            label: t("actions"),
            hiddenLabel: true,
            cell: (x) => (
              <button type="button" className="link" disabled={busy} onClick={() => remove(x)} aria-label={t("unsuppress", { email: x.email })}>
                {t("allowAgain")}
              </button>
            ),
          },
        ]}
      />
    </Area>
  );
}
