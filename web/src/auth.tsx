// Who is signed in: the user of the stored tokens, read once from /api/auth/me.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, loadTokens, saveTokens, type TokenPair, type User } from "./api";
import { applyTheme, themeOf } from "./theme";

interface Auth {
  user: User | null;
  ready: boolean;
  signIn: (login: string, password: string) => Promise<void>;
  signOut: () => Promise<void>;
}

const Ctx = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [ready, setReady] = useState(() => loadTokens() === null);
  useEffect(() => {
    if (!loadTokens()) return;
    api<User>("GET", "/api/auth/me")
      .then((u) => {
        setUser(u);
        applyTheme(themeOf(u.settings));
      })
      .catch(() => saveTokens(null))
      .finally(() => setReady(true));
  }, []);
  const signIn = useCallback(async (login: string, password: string) => {
    const pair = await api<TokenPair>("POST", "/api/auth/login", { username: login, password });
    saveTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
    setUser(pair.user);
    applyTheme(themeOf(pair.user.settings));
  }, []);
  const signOut = useCallback(async () => {
    const t = loadTokens();
    try {
      if (t) await api("POST", "/api/auth/logout", { refreshToken: t.refreshToken });
    } finally {
      saveTokens(null);
      setUser(null);
    }
  }, []);
  const value = useMemo(() => ({ user, ready, signIn, signOut }), [user, ready, signIn, signOut]);
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): Auth {
  const c = useContext(Ctx);
  if (!c) throw new Error("useAuth outside AuthProvider");
  return c;
}
