// Your settings: language, time zone, theme, when digests and reminders come, and the
// notification matrix (event × channel: at once, daily digest, off).
import { useEffect, useId, useState, type FormEvent } from "react";
import { api, CHANNELS, EVENTS, frequencyOf, type Frequency, type UserSettings } from "../api";
import { useAuth } from "../auth";
import { isLanguage, LANGUAGES, useI18n, type Key } from "../i18n";
import { applyTheme } from "../theme";
import { fieldError, FormError, NATIVE, useAction } from "../ui";

function zones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  return intl.supportedValuesOf?.("timeZone") ?? ["UTC"];
}

export function Settings() {
  const { t, setLang } = useI18n();
  const { user } = useAuth();
  const [s, setS] = useState<UserSettings | null>(null);
  const { error, setError, busy, run } = useAction();
  const [saved, setSaved] = useState(false);
  const ids = { lang: useId(), tz: useId(), hour: useId(), remind: useId(), theme: useId(), zones: useId() };
  const path = user ? `/api/users/${user.id}/settings` : null;
  useEffect(() => {
    if (path) api<UserSettings>("GET", path).then(setS, setError);
  }, [path, setError]);
  if (!s || !path) return <FormError error={error} />;

  const setPref = (event: string, channel: string, f: Frequency) => {
    const prefs = { ...s.notificationPreferences, [event]: { ...s.notificationPreferences[event], [channel]: f } };
    setS({ ...s, notificationPreferences: prefs });
    setSaved(false);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(async () => {
      // Every cell, so what is shown is what is stored.
      const prefs: Record<string, Record<string, Frequency>> = {};
      for (const ev of EVENTS) {
        prefs[ev] = {};
        for (const ch of CHANNELS) if (!(ev === "account.security" && ch === "email")) prefs[ev][ch] = frequencyOf(s, ev, ch);
      }
      const stored = await api<UserSettings>("PATCH", path, { ...s, notificationPreferences: prefs });
      setS(stored);
      setSaved(true);
      if (isLanguage(stored.language)) setLang(stored.language);
      applyTheme(stored.displayOptions.theme);
    });
  };
  const options = (channel: string): Frequency[] =>
    channel === "in_app" ? ["immediate", "off"] : ["immediate", "digest", "off"];
  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">{t("settings")}</h1>
      <form onSubmit={submit} noValidate className="settings">
        <FormError error={error} fields={["language", "timezone", "digestHour", "reminderMinutes", "displayOptions.theme"]} />
        <div className="grid">
          <div className="field">
            <label htmlFor={ids.lang}>{t("language")}</label>
            <select id={ids.lang} value={s.language} onChange={(e) => setS({ ...s, language: e.target.value })}>
              {LANGUAGES.map((l) => (
                <option key={l} value={l} lang={l}>
                  {NATIVE[l]}
                </option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.tz}>{t("timezone")}</label>
            <input id={ids.tz} list={ids.zones} value={s.timezone} onChange={(e) => setS({ ...s, timezone: e.target.value })}
              aria-invalid={fieldError(error, "timezone") ? true : undefined} />
            <datalist id={ids.zones}>
              {zones().map((z) => (
                <option key={z} value={z} />
              ))}
            </datalist>
            {fieldError(error, "timezone") && <p className="field-error">{fieldError(error, "timezone")}</p>}
          </div>
          <div className="field">
            <label htmlFor={ids.hour}>{t("digestHour")}</label>
            <select id={ids.hour} value={s.digestHour} onChange={(e) => setS({ ...s, digestHour: Number(e.target.value) })}>
              {Array.from({ length: 24 }, (_, h) => (
                <option key={h} value={h}>{`${String(h).padStart(2, "0")}:00`}</option>
              ))}
            </select>
          </div>
          <div className="field">
            <label htmlFor={ids.remind}>{t("reminderMinutes")}</label>
            <input id={ids.remind} type="number" min={5} max={10080} value={s.reminderMinutes}
              onChange={(e) => setS({ ...s, reminderMinutes: Number(e.target.value) })}
              aria-invalid={fieldError(error, "reminderMinutes") ? true : undefined} />
            {fieldError(error, "reminderMinutes") && <p className="field-error">{fieldError(error, "reminderMinutes")}</p>}
          </div>
          <div className="field">
            <label htmlFor={ids.theme}>{t("theme")}</label>
            <select id={ids.theme} value={s.displayOptions.theme}
              onChange={(e) => setS({ ...s, displayOptions: { ...s.displayOptions, theme: e.target.value } })}>
              <option value="system">{t("themeSystem")}</option>
              <option value="light">{t("themeLight")}</option>
              <option value="dark">{t("themeDark")}</option>
            </select>
          </div>
        </div>
        <table className="prefs">
          <caption>{t("preferences")}</caption>
          <thead>
            <tr>
              <th scope="col">{t("event")}</th>
              {CHANNELS.map((c) => (
                <th scope="col" key={c}>
                  {t(`channel.${c}` as Key)}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {EVENTS.map((ev) => (
              <tr key={ev}>
                <th scope="row">{t(`event.${ev}` as Key)}</th>
                {CHANNELS.map((ch) => (
                  <td key={ch}>
                    {ev === "account.security" && ch === "email" ? (
                      t("freq.always")
                    ) : (
                      <select
                        aria-label={`${t(`event.${ev}` as Key)} — ${t(`channel.${ch}` as Key)}`}
                        value={frequencyOf(s, ev, ch)}
                        onChange={(e) => setPref(ev, ch, e.target.value as Frequency)}
                      >
                        {options(ch).map((f) => (
                          <option key={f} value={f}>
                            {t(`freq.${f}` as Key)}
                          </option>
                        ))}
                      </select>
                    )}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
        <button type="submit" disabled={busy}>
          {t("save")}
        </button>
        {saved && <p role="status">{t("saved")}</p>}
      </form>
    </section>
  );
}
