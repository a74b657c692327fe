import { lazy, Suspense, useCallback, useEffect, useState, type ReactNode } from "react";
import { api } from "./api";
import { BrowserRouter, Navigate, NavLink, Route, Routes, useLocation } from "react-router-dom";
import { AuthProvider, useAuth } from "./auth";
import { I18nProvider, useI18n } from "./i18n";
import { Contacts } from "./pages/Contacts";
import { Companies, Deals, Tasks } from "./pages/Lists";
import { Notifications } from "./pages/Notifications";
import { CompanyPage, ContactPage, DealPage, TaskPage } from "./pages/Records";
import { Reports } from "./pages/Reports";
import { AdminArea, AdminUserPage, AdminUsers, AuditLog, InviteUser, TeamPage, Teams } from "./pages/Admin";
import { Profile } from "./pages/Profile";
import { Pipeline } from "./pages/Pipeline";
import { Import } from "./pages/Import";

// Charts load with the dashboard, not with every page.
const Dashboard = lazy(() => import("./pages/Dashboard").then((m) => ({ default: m.Dashboard })));
const ReportBuilder = lazy(() => import("./pages/ReportBuilder").then((m) => ({ default: m.ReportBuilder })));
// The campaigns area loads when it is opened.
const campaigns = () => import("./pages/Campaigns");
const CampaignList = lazy(() => campaigns().then((m) => ({ default: m.CampaignList })));
const CampaignPage = lazy(() => campaigns().then((m) => ({ default: m.CampaignPage })));
const TemplateList = lazy(() => campaigns().then((m) => ({ default: m.TemplateList })));
const TemplatePage = lazy(() => campaigns().then((m) => ({ default: m.TemplatePage })));
const SegmentList = lazy(() => campaigns().then((m) => ({ default: m.SegmentList })));
const SegmentPage = lazy(() => campaigns().then((m) => ({ default: m.SegmentPage })));
const Suppressions = lazy(() => campaigns().then((m) => ({ default: m.Suppressions })));
// So does billing.
const billing = () => import("./pages/Billing");
const InvoiceList = lazy(() => billing().then((m) => ({ default: m.InvoiceList })));
const InvoicePage = lazy(() => billing().then((m) => ({ default: m.InvoicePage })));
const QuoteList = lazy(() => billing().then((m) => ({ default: m.QuoteList })));
const QuotePage = lazy(() => billing().then((m) => ({ default: m.QuotePage })));
const Products = lazy(() => billing().then((m) => ({ default: m.Products })));
const SubscriptionList = lazy(() => billing().then((m) => ({ default: m.SubscriptionList })));
const SubscriptionPage = lazy(() => billing().then((m) => ({ default: m.SubscriptionPage })));
const BillingSettingsPage = lazy(() => billing().then((m) => ({ default: m.BillingSettingsPage })));
import { Settings } from "./pages/Settings";
import { AcceptInvitation, ForgotPassword, OAuthCallback, Register, ResetPassword, SignIn, VerifyEmail } from "./pages/auth";
import { LanguagePicker } from "./ui";

/** The unread count, read again every minute and after a change. */
function useUnread(signedIn: boolean): [number, () => void] {
  const [n, setN] = useState(0);
  const refresh = useCallback(() => {
    if (signedIn) api<{ count: number }>("GET", "/api/notifications/unread-count").then((c) => setN(c.count), () => {});
  }, [signedIn]);
  useEffect(() => {
    refresh();
    const timer = setInterval(refresh, 60_000);
    return () => clearInterval(timer);
  }, [refresh]);
  return [n, refresh];
}

/** Pages behind sign-in: the header, the navigation and the page. */
function Shell({ children }: { children: (refreshUnread: () => void) => ReactNode }) {
  const { user, ready, signOut } = useAuth();
  const { t } = useI18n();
  const location = useLocation();
  const [unread, refreshUnread] = useUnread(!!user);
  if (!ready) return <p role="status">{t("loading")}</p>;
  if (!user) return <Navigate to="/login" replace state={{ from: location.pathname }} />;
  return (
    <div className="shell">
      <header>
        <span className="brand">{t("appName")}</span>
        <nav aria-label={t("mainNav")}>
          <NavLink to="/dashboard">{t("dashboard")}</NavLink>
          <NavLink to="/contacts">{t("contacts")}</NavLink>
          <NavLink to="/companies">{t("companies")}</NavLink>
          <NavLink to="/deals">{t("deals")}</NavLink>
          <NavLink to="/pipeline">{t("pipeline")}</NavLink>
          <NavLink to="/tasks">{t("tasks")}</NavLink>
          <NavLink to="/reports">{t("reports")}</NavLink>
          <NavLink to="/campaigns">{t("campaigns")}</NavLink>
          <NavLink to="/billing/invoices">{t("billing")}</NavLink>
          <NavLink to="/import">{t("importNav")}</NavLink>
          <NavLink to="/notifications">
            {t("notifications")}
            {unread > 0 && <span className="badge">{t("unreadCount", { n: String(unread) })}</span>}
          </NavLink>
          <NavLink to="/settings">{t("settings")}</NavLink>
          {(user.role === "admin" || user.role === "manager") && <NavLink to="/admin/users">{t("admin")}</NavLink>}
        </nav>
        <NavLink to="/profile" className="who">
          {t("signedInAs", { name: user.username })}
        </NavLink>
        <LanguagePicker
          onPick={(language) => {
            // Kept with the user's settings; the screen has changed already either way.
            api("PATCH", `/api/users/${user.id}/settings`, { language }).catch(() => undefined);
          }}
        />
        <button type="button" onClick={() => void signOut()}>
          {t("signOut")}
        </button>
      </header>
      <main>{children(refreshUnread)}</main>
    </div>
  );
}

/** A page behind sign-in whose code loads when it is first opened. */
function Lazy({ page }: { page: ReactNode }) {
  return <Shell>{() => <Suspense fallback={<p role="status">…</p>}>{page}</Suspense>}</Shell>;
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
            <Route path="/oauth/callback" element={<OAuthCallback />} />
            <Route path="/contacts" element={<Shell>{() => <Contacts />}</Shell>} />
            <Route path="/contacts/:id" element={<Shell>{() => <ContactPage />}</Shell>} />
            <Route
              path="/dashboard"
              element={<Shell>{() => <Suspense fallback={<p role="status">…</p>}><Dashboard /></Suspense>}</Shell>}
            />
            <Route path="/companies" element={<Shell>{() => <Companies />}</Shell>} />
            <Route path="/companies/:id" element={<Shell>{() => <CompanyPage />}</Shell>} />
            <Route path="/deals/:id" element={<Shell>{() => <DealPage />}</Shell>} />
            <Route path="/tasks/:id" element={<Shell>{() => <TaskPage />}</Shell>} />
            <Route path="/deals" element={<Shell>{() => <Deals />}</Shell>} />
            <Route path="/tasks" element={<Shell>{() => <Tasks />}</Shell>} />
            <Route path="/reports" element={<Shell>{() => <Reports />}</Shell>} />
            <Route
              path="/reports/:id"
              element={<Shell>{() => <Suspense fallback={<p role="status">…</p>}><ReportBuilder /></Suspense>}</Shell>}
            />
            <Route path="/campaigns" element={<Lazy page={<CampaignList />} />} />
            <Route path="/campaigns/templates" element={<Lazy page={<TemplateList />} />} />
            <Route path="/campaigns/templates/:id" element={<Lazy page={<TemplatePage />} />} />
            <Route path="/campaigns/segments" element={<Lazy page={<SegmentList />} />} />
            <Route path="/campaigns/segments/:id" element={<Lazy page={<SegmentPage />} />} />
            <Route path="/campaigns/suppressions" element={<Lazy page={<Suppressions />} />} />
            <Route path="/campaigns/:id" element={<Lazy page={<CampaignPage />} />} />
            <Route path="/billing" element={<Navigate to="/billing/invoices" replace />} />
            <Route path="/billing/invoices" element={<Lazy page={<InvoiceList />} />} />
            <Route path="/billing/invoices/:id" element={<Lazy page={<InvoicePage />} />} />
            <Route path="/billing/quotes" element={<Lazy page={<QuoteList />} />} />
            <Route path="/billing/quotes/:id" element={<Lazy page={<QuotePage />} />} />
            <Route path="/billing/products" element={<Lazy page={<Products />} />} />
            <Route path="/billing/subscriptions" element={<Lazy page={<SubscriptionList />} />} />
            <Route path="/billing/subscriptions/:id" element={<Lazy page={<SubscriptionPage />} />} />
            <Route path="/billing/settings" element={<Lazy page={<BillingSettingsPage />} />} />
            <Route path="/pipeline" element={<Shell>{() => <Pipeline />}</Shell>} />
            <Route path="/import" element={<Shell>{() => <Import />}</Shell>} />
            <Route path="/notifications" element={<Shell>{(refresh) => <Notifications onChange={refresh} />}</Shell>} />
            <Route path="/settings" element={<Shell>{() => <Settings />}</Shell>} />
            <Route path="/profile" element={<Shell>{() => <Profile />}</Shell>} />
            <Route path="/admin/users" element={<Shell>{() => <AdminArea><AdminUsers /></AdminArea>}</Shell>} />
            <Route path="/admin/users/new" element={<Shell>{() => <AdminArea><InviteUser /></AdminArea>}</Shell>} />
            <Route path="/admin/users/:id" element={<Shell>{() => <AdminArea><AdminUserPage /></AdminArea>}</Shell>} />
            <Route path="/admin/teams" element={<Shell>{() => <AdminArea><Teams /></AdminArea>}</Shell>} />
            <Route path="/admin/teams/:id" element={<Shell>{() => <AdminArea><TeamPage /></AdminArea>}</Shell>} />
            <Route path="/admin/audit" element={<Shell>{() => <AdminArea><AuditLog /></AdminArea>}</Shell>} />
            <Route path="*" element={<Navigate to="/contacts" replace />} />
          </Routes>
        </BrowserRouter>
      </AuthProvider>
    </I18nProvider>
  );
}
