// The files attached to a record: listed with their size, downloaded through the API
// (the request carries the bearer token, so a plain link would not do), added from a file
// picker (the server finds each file's type from its bytes), removed.
import { useEffect, useId, useState } from "react";
import { api, apiFile, saveFile, type Attachment } from "./api";
import { useI18n } from "./i18n";
import { fieldError, FormError, useAction } from "./ui";

/** A byte count as people read it: "820 bytes", "14.2 kB", "3.1 MB". */
export function sizeOf(bytes: number, lang: string): string {
  const [n, unit] = bytes >= 1_000_000 ? [bytes / 1_000_000, "megabyte"] : bytes >= 1000 ? [bytes / 1000, "kilobyte"] : [bytes, "byte"];
  // "820 bytes", not "820 byte"; "14.2 kB", not "14.2 kilobytes".
  const unitDisplay = unit === "byte" ? "long" : "short";
  return new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay, maximumFractionDigits: 1 }).format(n);
}

export function Attachments({ path, id, readOnly = false }: { path: string; id: string; readOnly?: boolean }) {
  const { t, lang } = useI18n();
  const [files, setFiles] = useState<Attachment[] | null>(null);
  const { error, setError, busy, run } = useAction();
  const inputId = useId();
  const base = `${path}/${id}/attachments`;
  const fileError = fieldError(error, "file");
  useEffect(() => {
    api<{ data: Attachment[] }>("GET", base).then((p) => setFiles(p.data), setError);
  }, [base, setError]);
  const upload = (picked: FileList | null) =>
    run(async () => {
      for (const f of Array.from(picked ?? [])) {
        const form = new FormData();
        form.append("file", f, f.name);
        const a = await api<Attachment>("POST", base, form);
        setFiles((cur) => [...(cur ?? []), a]);
      }
    });
  const download = (a: Attachment) =>
    run(async () => {
      const { blob } = await apiFile("GET", `/api/attachments/${a.id}/content`);
      saveFile(a.fileName, blob);
    });
  const remove = (a: Attachment) =>
    run(async () => {
      await api("DELETE", `/api/attachments/${a.id}`);
      setFiles((cur) => (cur ?? []).filter((x) => x.id !== a.id));
    });
  return (
    <section className="attachments" aria-labelledby={`${inputId}-title`}>
      <h2 id={`${inputId}-title`}>{t("attachments")}</h2>
      <FormError error={error} fields={["file"]} />
      {files === null ? (
        <p role="status">{t("loading")}</p>
      ) : files.length === 0 ? (
        <p>{t("noAttachments")}</p>
      ) : (
        <ul>
          {files.map((a) => (
            <li key={a.id}>
              <button type="button" className="link" disabled={busy} onClick={() => void download(a)}>
                {a.fileName}
              </button>{" "}
              <span className="muted">{sizeOf(a.size, lang)}</span>
              {!readOnly && (
                <button
                  type="button"
                  className="danger small"
                  disabled={busy}
                  aria-label={t("removeFile", { name: a.fileName })}
                  onClick={() => void remove(a)}
                >
                  {t("remove")}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {!readOnly && (
        <div className="field">
          <label htmlFor={inputId}>{t("attachFile")}</label>
          <input
            id={inputId}
            type="file"
            multiple
            disabled={busy}
            aria-invalid={fileError ? true : undefined}
            aria-describedby={fileError ? `${inputId}-error` : undefined}
            onChange={(e) => {
              void upload(e.target.files);
              e.target.value = "";
            }}
          />
          {fileError && (
            <p id={`${inputId}-error`} className="field-error">
              {fileError}
            </p>
          )}
        </div>
      )}
    </section>
  );
}
