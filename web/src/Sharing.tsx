// Who a saved report or dashboard is shared with: users, teams and roles, each a set of
// checkboxes. Sharing lets them open it; only its owner (and managers or admins over them)
// change it.
import { useState } from "react";
import type { SavedReport } from "./api";
import { useAuth } from "./auth";
import { useI18n, type Key } from "./i18n";
import { useTeams, useUsers } from "./users";

const ROLES = ["user", "manager", "admin"] as const;

/** Whom a report is shared with, as the API takes it. */
export interface Shares {
  users: string[];
  teams: string[];
  roles: string[];
}

export const sharesOf = (r: SavedReport | null | undefined): Shares => ({
  users: r?.sharedWith.users ?? [],
  teams: r?.sharedWith.teams ?? [],
  roles: r?.sharedWith.roles ?? [],
});

const flip = (list: string[], v: string, on: boolean) => (on ? [...list, v] : list.filter((x) => x !== v));

/** The checkboxes of a sharing, and the button that saves it (`action`: its label). */
export function Sharing({ initial, onSave, busy, action }: { initial: Shares; onSave: (s: Shares) => Promise<void>; busy: boolean; action?: string }) {
  const { t } = useI18n();
  const { user } = useAuth();
  const users = useUsers().filter((u) => u.id !== user?.id);
  const teams = useTeams();
  const [s, setS] = useState<Shares>(initial);
  return (
    <fieldset className="sharing">
      <legend>{t("sharing")}</legend>
      {users.length > 0 && (
        <fieldset>
          <legend>{t("shareUsers")}</legend>
          {users.map((u) => (
            <label key={u.id}>
              <input type="checkbox" checked={s.users.includes(u.id)} onChange={(e) => setS({ ...s, users: flip(s.users, u.id, e.target.checked) })} /> {u.username}
            </label>
          ))}
        </fieldset>
      )}
      {teams.length > 0 && (
        <fieldset>
          <legend>{t("shareTeams")}</legend>
          {teams.map((x) => (
            <label key={x.id}>
              <input type="checkbox" checked={s.teams.includes(x.id)} onChange={(e) => setS({ ...s, teams: flip(s.teams, x.id, e.target.checked) })} /> {x.name}
            </label>
          ))}
        </fieldset>
      )}
      <fieldset>
        <legend>{t("shareRoles")}</legend>
        {ROLES.map((r) => (
          <label key={r}>
            <input type="checkbox" checked={s.roles.includes(r)} onChange={(e) => setS({ ...s, roles: flip(s.roles, r, e.target.checked) })} /> {t(`role.${r}` as Key)}
          </label>
        ))}
      </fieldset>
      <button type="button" disabled={busy} onClick={() => void onSave(s)}>
        {action ?? t("saveSharing")}
      </button>
    </fieldset>
  );
}
