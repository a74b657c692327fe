// The theme a user chose in their settings (`system`, `light`, `dark`), applied to the
// page and remembered for the next load before sign-in.
const KEY = "crm-rs.theme";

export function applyTheme(theme: string | undefined): void {
  const t = theme === "light" || theme === "dark" ? theme : "system";
  if (t === "system") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
  localStorage.setItem(KEY, t);
}

/** The theme of the user's stored settings (`displayOptions.theme`), if any. */
export function themeOf(settings: unknown): string | undefined {
  const d = (settings as { displayOptions?: { theme?: unknown } } | null)?.displayOptions;
  return typeof d?.theme === "string" ? d.theme : undefined;
}

export function restoreTheme(): void {
  applyTheme(localStorage.getItem(KEY) ?? "system");
}
