// Importing a spreadsheet: a CSV or XLSX file of contacts, companies, deals or tasks is
// uploaded; the server reads its columns and suggests the field each fills and how rows
// find the record they update; the mapping can be changed, a dry run says what would
// happen, the import runs with a progress bar, and each row's outcome can be downloaded.
import { useEffect, useState, type FormEvent } from "react";
import { api, apiFile, saveFile, type ImportView, type UploadView } from "../api";
import { useI18n, type Key } from "../i18n";
import { FormError, useAction } from "../ui";

const KINDS = ["contacts", "companies", "deals", "tasks"] as const;
type Kind = (typeof KINDS)[number];
const MATCHES: Record<Kind, string[]> = {
  contacts: ["email", "id"],
  companies: ["domain", "id"],
  deals: ["id"],
  tasks: ["id"],
};

const running = (j: ImportView | null) => j !== null && (j.status === "queued" || j.status === "running");

export function Import() {
  const { t } = useI18n();
  const [kind, setKind] = useState<Kind>("contacts");
  const [file, setFile] = useState<File | null>(null);
  const [upload, setUpload] = useState<UploadView | null>(null);
  const [mapping, setMapping] = useState<(string | null)[]>([]);
  const [matchBy, setMatchBy] = useState<string>("");
  const [dryRun, setDryRun] = useState(false);
  const [job, setJob] = useState<ImportView | null>(null);
  const action = useAction();

  // A job on its way is followed until it ends.
  useEffect(() => {
    if (!job || !running(job)) return;
    const timer = setTimeout(() => {
      api<ImportView>("GET", `/api/imports/${job.id}`).then(setJob, action.setError);
    }, 400);
    return () => clearTimeout(timer);
  }, [job, action.setError]);

  const send = (e: FormEvent) => {
    e.preventDefault();
    if (!file) return;
    void action.run(async () => {
      const form = new FormData();
      form.append("file", file, file.name);
      const up = await api<UploadView>("POST", `/api/imports?kind=${kind}`, form);
      setUpload(up);
      setMapping(up.job.mapping);
      setMatchBy(up.job.matchBy ?? "");
      setJob(null);
    });
  };

  const start = (asDryRun: boolean) =>
    action.run(async () => {
      if (!upload) return;
      const body =
        job === null || job.dryRun ? { mapping, matchBy: matchBy === "" ? null : matchBy, dryRun: asDryRun } : { dryRun: asDryRun };
      setJob(await api<ImportView>("POST", `/api/imports/${upload.job.id}/start`, body));
    });

  const cancel = () =>
    action.run(async () => {
      if (job) setJob(await api<ImportView>("POST", `/api/imports/${job.id}/cancel`));
    });

  const results = () =>
    action.run(async () => {
      if (!job) return;
      const f = await apiFile("GET", `/api/imports/${job.id}/results`);
      saveFile(f.name, f.blob);
    });

  const options = (current: string | null | undefined) => {
    const fields = upload?.fields ?? [];
    return current && !fields.includes(current) ? [...fields, current] : fields;
  };
  const locked = job !== null && !job.dryRun && job.rowsDone > 0;

  return (
    <section aria-labelledby="import-title" className="import">
      <h1 id="import-title">{t("importTitle")}</h1>
      <form onSubmit={send} className="toolbar">
        <label htmlFor="import-kind">{t("importInto")}</label>
        <select id="import-kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)}>
          {KINDS.map((k) => (
            <option key={k} value={k}>
              {t(k)}
            </option>
          ))}
        </select>
        <label htmlFor="import-file">{t("importFile")}</label>
        <input id="import-file" type="file" accept=".csv,.xlsx,text/csv" onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        <button type="submit" disabled={!file || action.busy}>
          {t("importUpload")}
        </button>
      </form>
      <FormError error={action.error} fields={["file", "kind", "mapping", "matchBy"]} />
      {upload && (
        <>
          <p>
            {t("importRead", {
              rows: String(upload.job.totalRows),
              name: upload.job.fileName,
              encoding: upload.job.encoding ?? upload.job.format.toUpperCase(),
            })}
          </p>
          <table className="mapping">
            <caption>{t("importMapping")}</caption>
            <thead>
              <tr>
                <th scope="col">{t("importColumn")}</th>
                <th scope="col">{t("importField")}</th>
                <th scope="col">{t("importSample")}</th>
              </tr>
            </thead>
            <tbody>
              {upload.job.headers.map((h, i) => (
                <tr key={`${h}-${i}`}>
                  <th scope="row">{h}</th>
                  <td>
                    <select
                      aria-label={t("importFieldOf", { column: h })}
                      value={mapping[i] ?? ""}
                      disabled={locked || running(job)}
                      onChange={(e) => setMapping(mapping.map((m, j) => (j === i ? e.target.value || null : m)))}
                    >
                      <option value="">{t("importLeaveOut")}</option>
                      {options(mapping[i]).map((f) => (
                        <option key={f} value={f}>
                          {f}
                        </option>
                      ))}
                    </select>
                  </td>
                  <td>{upload.preview[0]?.[i] ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="toolbar">
            <label htmlFor="import-match">{t("importMatchBy")}</label>
            <select id="import-match" value={matchBy} disabled={locked || running(job)} onChange={(e) => setMatchBy(e.target.value)}>
              <option value="">{t("importEveryRowNew")}</option>
              {[...MATCHES[kind], ...mapping.filter((m): m is string => m?.startsWith("customFields.") ?? false)].map((m) => (
                <option key={m} value={m}>
                  {m}
                </option>
              ))}
            </select>
            <label>
              <input type="checkbox" checked={dryRun} onChange={(e) => setDryRun(e.target.checked)} disabled={running(job)} /> {t("importDryRun")}
            </label>
            <button type="button" disabled={action.busy || running(job)} onClick={() => void start(dryRun)}>
              {job && !job.dryRun && job.status !== "completed" ? t("importResume") : t("importStart")}
            </button>
          </div>
        </>
      )}
      {job && (
        <div role="status" className={job.status === "failed" ? "alert" : "notice"}>
          <progress max={100} value={job.progress.percent} aria-label={t("importProgress")} />{" "}
          <span>
            {t("importCounts", {
              done: String(job.rowsDone),
              total: String(job.totalRows),
              created: String(job.created),
              updated: String(job.updated),
              unchanged: String(job.unchanged),
              failed: String(job.failed),
            })}
          </span>{" "}
          {running(job) && job.progress.rowsPerSecond != null && (
            <span>{t("importRate", { rate: String(job.progress.rowsPerSecond), eta: String(job.progress.etaSeconds ?? 0) })}</span>
          )}
          <p>{t(job.dryRun ? "importStatusDry" : "importStatus", { status: t(`importStatus_${job.status}` as Key) })}</p>
          {job.error && <p>{job.error}</p>}
          {running(job) && (
            <button type="button" className="danger" onClick={() => void cancel()}>
              {t("importCancel")}
            </button>
          )}
          {job.batches > 0 && (
            <button type="button" className="secondary" onClick={() => void results()}>
              {t("importResults")}
            </button>
          )}
        </div>
      )}
    </section>
  );
}
