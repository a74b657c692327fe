// The users (and teams) the signed-in user may see; users read once per page load: their names stand in
// for owner ids, and they are whom records can be assigned to (the server still checks
// the caller's Assign scope and names the field when it refuses).
import { useEffect, useState } from "react";
import { api, type Page, type Team, type User } from "./api";

let cached: Promise<User[]> | null = null;

/** Every user the caller may list (a `user` sees themselves only), deactivated ones
 * included (their names still stand for their records). */
function loadAll(): Promise<User[]> {
  cached ??= api<{ data: User[] }>("GET", "/api/users?limit=200").then(
    (p) => p.data,
    (e: unknown) => {
      cached = null;
      throw e;
    },
  );
  return cached;
}

/** Forgets the list (after signing out, or once users changed). */
export function forgetUsers(): void {
  cached = null;
}

/** The users records can be given to: the active ones the caller may list. */
export function useUsers(): User[] {
  return useListedUsers(false);
}

/** Every user the caller may list, deactivated ones included: for names. */
export function useAllUsers(): User[] {
  return useListedUsers(true);
}

function useListedUsers(all: boolean): User[] {
  const [users, setUsers] = useState<User[]>([]);
  useEffect(() => {
    let live = true;
    loadAll().then(
      (u) => live && setUsers(all ? u : u.filter((x) => !x.deletedAt)),
      () => {},
    );
    return () => {
      live = false;
    };
  }, [all]);
  return users;
}

/** A user's name by id; an id the caller may not resolve is shown shortened. */
export function nameOf(users: User[], id: string | null | undefined): string {
  if (!id) return "";
  return users.find((u) => u.id === id)?.username ?? id.slice(0, 8);
}

/** The teams the caller may see, by name. */
export function useTeams(): Team[] {
  const [teams, setTeams] = useState<Team[]>([]);
  useEffect(() => {
    let live = true;
    api<Page<Team>>("GET", "/api/teams?limit=200&sort=name").then(
      (p) => live && setTeams(p.data),
      () => {},
    );
    return () => {
      live = false;
    };
  }, []);
  return teams;
}
