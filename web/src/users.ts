// The users the signed-in user may see, read once per page load: their names stand in
// for owner ids, and they are whom records can be assigned to (the server still checks
// the caller's Assign scope and names the field when it refuses).
import { useEffect, useState } from "react";
import { api, type User } from "./api";

let cached: Promise<User[]> | null = null;

/** Every user the caller may list (a `user` sees themselves only). */
export function loadUsers(): Promise<User[]> {
  cached ??= api<{ data: User[] }>("GET", "/api/users?limit=200").then(
    (p) => p.data.filter((u) => !u.deletedAt),
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

export function useUsers(): User[] {
  const [users, setUsers] = useState<User[]>([]);
  useEffect(() => {
    let live = true;
    loadUsers().then(
      (u) => live && setUsers(u),
      () => {},
    );
    return () => {
      live = false;
    };
  }, []);
  return users;
}

/** A user's name by id; an id the caller may not resolve is shown shortened. */
export function nameOf(users: User[], id: string | null | undefined): string {
  if (!id) return "";
  return users.find((u) => u.id === id)?.username ?? id.slice(0, 8);
}
