import type { ReactNode } from "react";
import { BrowserRouter, Navigate, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { AuthProvider, useAuth } from "./auth";
import { I18nProvider, useI18n } from "./i18n";
import { Contacts } from "./pages/Contacts";
import { AcceptInvitation, ForgotPassword, Register, ResetPassword, SignIn, VerifyEmail } from "./pages/auth";
import { LanguagePicker } from "./ui";

/** Pages behind sign-in: the header, the navigation and the page. */
function Shell({ children }: { children: ReactNode }) {
  const { user, ready, signOut } = useAuth();
  const { t } = useI18n();
  const location = useLocation();
  if (!ready) return <p role="status">{t("loading")}</p>;
  if (!user) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return (
    <div className="shell">
      <header>
        <span className="brand">{t("appName")}</span>
        <nav aria-label={t("mainNav")}>
          <NavLink to="/contacts">{t("contacts")}</NavLink>
        </nav>
        <span className="who">{t("signedInAs", { name: user.username })}</span>
        <LanguagePicker />
        <button type="button" onClick={() => void signOut()}>
          {t("signOut")}
        </button>
      </header>
      <main>{children}</main>
    </div>
  );
}

export function App() {
  return (
    <I18nProvider>
      <AuthProvider>
        <BrowserRouter>
          <Routes>
            <Route path="/login" element={<SignIn />} />
            <Route path="/register" element={<Register />} />
            <Route path="/verify-email" element={<VerifyEmail />} />
            <Route path="/forgot-password" element={<ForgotPassword />} />
            <Route path="/reset-password" element={<ResetPassword />} />
            <Route path="/accept-invitation" element={<AcceptInvitation />} />
            <Route path="/contacts" element={<Shell><Contacts /></Shell>} />
            <Route path="*" element={<Navigate to="/contacts" replace />} />
          </Routes>
        </BrowserRouter>
      </AuthProvider>
    </I18nProvider>
  );
}
