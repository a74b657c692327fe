// Who is signed in: the user of the stored tokens, read once from /api/auth/me.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { api, loadTokens, saveTokens, type TokenPair, type User } from "./api";
import { isLanguage, useI18n } from "./i18n";
import { applyTheme, themeOf } from "./theme";
import { forgetUsers } from "./users";

interface Auth {
  user: User | null;
  ready: boolean;
  signIn: (login: string, password: string) => Promise<void>;
  /** Keeps the token pair a login answered (a third-party login's). */
  signedIn: (pair: TokenPair) => void;
  signOut: () => Promise<void>;
  /** The signed-in user as a change answered it (their profile page). */
  updated: (u: User) => void;
}

const Ctx = createContext<Auth | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [ready, setReady] = useState(() => loadTokens() === null);
  const { setLang } = useI18n();
  // The user's stored choices follow them to any browser they sign in on.
  const adopt = useCallback(
    (u: User) => {
      applyTheme(themeOf(u.settings));
      const language: unknown = (u.settings as Record<string, unknown> | undefined)?.language;
      if (isLanguage(language)) setLang(language);
    },
    [setLang],
  );
  useEffect(() => {
    if (!loadTokens()) return;
    api<User>("GET", "/api/auth/me")
      .then((u) => {
        setUser(u);
        adopt(u);
      })
      .catch(() => saveTokens(null))
      .finally(() => setReady(true));
  }, [adopt]);
  const signedIn = useCallback(
    (pair: TokenPair) => {
      saveTokens({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
      setUser(pair.user);
      adopt(pair.user);
    },
    [adopt],
  );
  const signIn = useCallback(
    async (login: string, password: string) => {
      signedIn(await api<TokenPair>("POST", "/api/auth/login", { username: login, password }));
    },
    [signedIn],
  );
  const signOut = useCallback(async () => {
    const t = loadTokens();
    try {
      if (t) await api("POST", "/api/auth/logout", { refreshToken: t.refreshToken });
    } finally {
      saveTokens(null);
      setUser(null);
      forgetUsers();
    }
  }, []);
  const updated = useCallback((u: User) => setUser(u), []);
  const value = useMemo(
    () => ({ user, ready, signIn, signedIn, signOut, updated }),
    [user, ready, signIn, signedIn, signOut, updated],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useAuth(): Auth {
  const c = useContext(Ctx);
  if (!c) throw new Error("useAuth outside AuthProvider");
  return c;
}
