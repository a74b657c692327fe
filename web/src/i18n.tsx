// The interface's words in English, French and Arabic; Arabic turns the page right to left.
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";

export const LANGUAGES = ["en", "fr", "ar"] as const;
export type Language = (typeof LANGUAGES)[number];

const en = {
  appName: "crm-rs",
  signIn: "Sign in",
  signOut: "Sign out",
  register: "Create an account",
  username: "User name",
  usernameOrEmail: "User name or email",
  email: "Email",
  password: "Password",
  newPassword: "New password",
  forgotPassword: "Forgot your password?",
  sendLink: "Send me a link",
  linkSent: "If an account has this address, a link to choose a new password is on its way.",
  resetTitle: "Choose a new password",
  resetDone: "Your password is changed. Sign in with it.",
  savePassword: "Save the password",
  verifyTitle: "Confirming your email address",
  verifyDone: "Your address is confirmed. You can sign in.",
  verifyWorking: "Confirming…",
  registered: "Almost there: follow the link we sent to {email} to confirm your address.",
  invitationTitle: "Set your password",
  invitationDone: "Your account is ready. Sign in with your new password.",
  noToken: "This link is incomplete: open it again from the email.",
  haveAccount: "Already have an account?",
  noAccount: "No account yet?",
  contacts: "Contacts",
  name: "Name",
  phone: "Phone",
  stage: "Stage",
  updated: "Updated",
  next: "Next page",
  first: "First page",
  noContacts: "No contacts yet.",
  loading: "Loading…",
  language: "Language",
  signedInAs: "Signed in as {name}",
  mainNav: "Main",
  problem: "Something went wrong: {detail}",
  notifications: "Notifications",
  unreadCount: "{n} unread",
  markRead: "Mark read",
  markAllRead: "Mark all read",
  unreadOnly: "Unread only",
  noNotifications: "Nothing new.",
  open: "Open",
  settings: "Settings",
  saved: "Saved.",
  save: "Save",
  timezone: "Time zone",
  digestHour: "Digest hour",
  reminderMinutes: "Task reminder (minutes before due)",
  theme: "Theme",
  themeSystem: "As the system",
  themeLight: "Light",
  themeDark: "Dark",
  preferences: "Notifications: what reaches you, where",
  event: "Event",
  "freq.immediate": "At once",
  "freq.digest": "Daily digest",
  "freq.off": "Off",
  "freq.always": "Always",
  "channel.email": "Email",
  "channel.in_app": "In the app",
  "channel.slack": "Slack",
  "channel.teams": "Teams",
  "event.task.assigned": "A task assigned to you",
  "event.task.due": "A task of yours falls due",
  "event.deal.assigned": "A deal handed to you",
  "event.deal.stage_changed": "Your deal moved stage",
  "event.deal.won": "Your deal won",
  "event.deal.lost": "Your deal lost",
  "event.contact.assigned": "A contact handed to you",
  "event.account.security": "Your account's security",
  "event.record.changed": "Someone changed your record",  newContact: "New contact",
  jobTitle: "Job title",
  leadSource: "Lead source",
  search: "Search",
  deleteIt: "Delete",
  restore: "Restore",
  deleted: "This contact is deleted.",
  askRestore: "A manager or an admin can restore it.",
  conflict: "Someone else changed this contact since you opened it.",
  reloadTheirs: "Reload their version",
  overwrite: "Overwrite with mine",
  notFound: "Not found.",
  back: "Back to the list",
};

export type Key = keyof typeof en;

const fr: Record<Key, string> = {
  appName: "crm-rs",
  signIn: "Se connecter",
  signOut: "Se déconnecter",
  register: "Créer un compte",
  username: "Nom d'utilisateur",
  usernameOrEmail: "Nom d'utilisateur ou e-mail",
  email: "E-mail",
  password: "Mot de passe",
  newPassword: "Nouveau mot de passe",
  forgotPassword: "Mot de passe oublié ?",
  sendLink: "M'envoyer un lien",
  linkSent: "Si un compte a cette adresse, un lien pour choisir un nouveau mot de passe est en route.",
  resetTitle: "Choisir un nouveau mot de passe",
  resetDone: "Votre mot de passe est changé. Connectez-vous avec lui.",
  savePassword: "Enregistrer le mot de passe",
  verifyTitle: "Confirmation de votre adresse e-mail",
  verifyDone: "Votre adresse est confirmée. Vous pouvez vous connecter.",
  verifyWorking: "Confirmation…",
  registered: "Presque fini : suivez le lien envoyé à {email} pour confirmer votre adresse.",
  invitationTitle: "Choisissez votre mot de passe",
  invitationDone: "Votre compte est prêt. Connectez-vous avec votre nouveau mot de passe.",
  noToken: "Ce lien est incomplet : ouvrez-le à nouveau depuis l'e-mail.",
  haveAccount: "Vous avez déjà un compte ?",
  noAccount: "Pas encore de compte ?",
  contacts: "Contacts",
  name: "Nom",
  phone: "Téléphone",
  stage: "Étape",
  updated: "Modifié",
  next: "Page suivante",
  first: "Première page",
  noContacts: "Aucun contact pour l'instant.",
  loading: "Chargement…",
  language: "Langue",
  signedInAs: "Connecté en tant que {name}",
  mainNav: "Principal",
  problem: "Un problème est survenu : {detail}",
  notifications: "Notifications",
  unreadCount: "{n} non lues",
  markRead: "Marquer comme lue",
  markAllRead: "Tout marquer comme lu",
  unreadOnly: "Non lues seulement",
  noNotifications: "Rien de nouveau.",
  open: "Ouvrir",
  settings: "Réglages",
  saved: "Enregistré.",
  save: "Enregistrer",
  timezone: "Fuseau horaire",
  digestHour: "Heure du récapitulatif",
  reminderMinutes: "Rappel de tâche (minutes avant l'échéance)",
  theme: "Thème",
  themeSystem: "Comme le système",
  themeLight: "Clair",
  themeDark: "Sombre",
  preferences: "Notifications : ce qui vous parvient, et où",
  event: "Événement",
  "freq.immediate": "Tout de suite",
  "freq.digest": "Récapitulatif quotidien",
  "freq.off": "Désactivé",
  "freq.always": "Toujours",
  "channel.email": "E-mail",
  "channel.in_app": "Dans l'application",
  "channel.slack": "Slack",
  "channel.teams": "Teams",
  "event.task.assigned": "Une tâche vous est assignée",
  "event.task.due": "Une de vos tâches arrive à échéance",
  "event.deal.assigned": "Une affaire vous est confiée",
  "event.deal.stage_changed": "Votre affaire change d'étape",
  "event.deal.won": "Votre affaire est gagnée",
  "event.deal.lost": "Votre affaire est perdue",
  "event.contact.assigned": "Un contact vous est confié",
  "event.account.security": "La sécurité de votre compte",
  "event.record.changed": "Quelqu'un a modifié votre fiche",  newContact: "Nouveau contact",
  jobTitle: "Fonction",
  leadSource: "Origine",
  search: "Rechercher",
  deleteIt: "Supprimer",
  restore: "Restaurer",
  deleted: "Ce contact est supprimé.",
  askRestore: "Un responsable ou un administrateur peut le restaurer.",
  conflict: "Quelqu'un d'autre a modifié ce contact depuis que vous l'avez ouvert.",
  reloadTheirs: "Recharger sa version",
  overwrite: "Écraser avec la mienne",
  notFound: "Introuvable.",
  back: "Retour à la liste",
};

const ar: Record<Key, string> = {
  appName: "crm-rs",
  signIn: "تسجيل الدخول",
  signOut: "تسجيل الخروج",
  register: "إنشاء حساب",
  username: "اسم المستخدم",
  usernameOrEmail: "اسم المستخدم أو البريد الإلكتروني",
  email: "البريد الإلكتروني",
  password: "كلمة المرور",
  newPassword: "كلمة المرور الجديدة",
  forgotPassword: "هل نسيت كلمة المرور؟",
  sendLink: "أرسل لي رابطًا",
  linkSent: "إن كان هناك حساب بهذا العنوان، فرابط اختيار كلمة مرور جديدة في الطريق إليه.",
  resetTitle: "اختر كلمة مرور جديدة",
  resetDone: "تم تغيير كلمة المرور. سجّل الدخول بها.",
  savePassword: "حفظ كلمة المرور",
  verifyTitle: "تأكيد عنوان بريدك الإلكتروني",
  verifyDone: "تم تأكيد عنوانك. يمكنك تسجيل الدخول.",
  verifyWorking: "جارٍ التأكيد…",
  registered: "بقيت خطوة: اتبع الرابط المرسل إلى {email} لتأكيد عنوانك.",
  invitationTitle: "اختر كلمة المرور",
  invitationDone: "حسابك جاهز. سجّل الدخول بكلمة المرور الجديدة.",
  noToken: "هذا الرابط غير مكتمل: افتحه مجددًا من الرسالة.",
  haveAccount: "لديك حساب بالفعل؟",
  noAccount: "ليس لديك حساب بعد؟",
  contacts: "جهات الاتصال",
  name: "الاسم",
  phone: "الهاتف",
  stage: "المرحلة",
  updated: "آخر تعديل",
  next: "الصفحة التالية",
  first: "الصفحة الأولى",
  noContacts: "لا توجد جهات اتصال بعد.",
  loading: "جارٍ التحميل…",
  language: "اللغة",
  signedInAs: "متصل باسم {name}",
  mainNav: "الرئيسية",
  problem: "حدث خطأ: {detail}",
  notifications: "الإشعارات",
  unreadCount: "غير المقروءة: {n}",
  markRead: "تعليم كمقروء",
  markAllRead: "تعليم الكل كمقروء",
  unreadOnly: "غير المقروءة فقط",
  noNotifications: "لا جديد.",
  open: "فتح",
  settings: "الإعدادات",
  saved: "تم الحفظ.",
  save: "حفظ",
  timezone: "المنطقة الزمنية",
  digestHour: "ساعة الملخّص",
  reminderMinutes: "تذكير المهمة (دقائق قبل الموعد)",
  theme: "المظهر",
  themeSystem: "حسب النظام",
  themeLight: "فاتح",
  themeDark: "داكن",
  preferences: "الإشعارات: ما يصلك وأين",
  event: "الحدث",
  "freq.immediate": "فورًا",
  "freq.digest": "ملخّص يومي",
  "freq.off": "متوقف",
  "freq.always": "دائمًا",
  "channel.email": "البريد الإلكتروني",
  "channel.in_app": "داخل التطبيق",
  "channel.slack": "Slack",
  "channel.teams": "Teams",
  "event.task.assigned": "مهمة أسندت إليك",
  "event.task.due": "اقتراب موعد إحدى مهامك",
  "event.deal.assigned": "صفقة أسندت إليك",
  "event.deal.stage_changed": "انتقال صفقتك إلى مرحلة أخرى",
  "event.deal.won": "ربح صفقتك",
  "event.deal.lost": "خسارة صفقتك",
  "event.contact.assigned": "جهة اتصال أسندت إليك",
  "event.account.security": "أمان حسابك",
  "event.record.changed": "تعديل أحدهم لسجل تملكه",  newContact: "جهة اتصال جديدة",
  jobTitle: "المسمى الوظيفي",
  leadSource: "مصدر العميل",
  search: "بحث",
  deleteIt: "حذف",
  restore: "استعادة",
  deleted: "جهة الاتصال هذه محذوفة.",
  askRestore: "يمكن لمدير أو مسؤول استعادتها.",
  conflict: "عدّل شخص آخر جهة الاتصال هذه منذ أن فتحتها.",
  reloadTheirs: "تحميل نسخته",
  overwrite: "الكتابة فوقها بنسختي",
  notFound: "غير موجود.",
  back: "العودة إلى القائمة",
};

const WORDS: Record<Language, Record<Key, string>> = { en, fr, ar };
const LANG_KEY = "crm-rs.lang";

export function isLanguage(l: unknown): l is Language {
  return typeof l === "string" && (LANGUAGES as readonly string[]).includes(l);
}

/** The text of `key` in `lang`, `{name}` filled from `vars`. */
export function translate(lang: Language, key: Key, vars: Record<string, string> = {}): string {
  return WORDS[lang][key].replace(/\{(\w+)\}/g, (_, v: string) => vars[v] ?? `{${v}}`);
}

function initial(): Language {
  const saved = localStorage.getItem(LANG_KEY);
  if (isLanguage(saved)) return saved;
  const browser = navigator.language.slice(0, 2);
  return isLanguage(browser) ? browser : "en";
}

interface I18n {
  lang: Language;
  setLang: (l: Language) => void;
  t: (key: Key, vars?: Record<string, string>) => string;
}

const Ctx = createContext<I18n | null>(null);

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Language>(initial);
  useEffect(() => {
    document.documentElement.lang = lang;
    document.documentElement.dir = lang === "ar" ? "rtl" : "ltr";
  }, [lang]);
  const setLang = useCallback((l: Language) => {
    localStorage.setItem(LANG_KEY, l);
    setLangState(l);
  }, []);
  const value = useMemo<I18n>(
    () => ({ lang, setLang, t: (key, vars) => translate(lang, key, vars) }),
    [lang, setLang],
  );
  return <Ctx.Provider value={value}>{children}</Ctx.Provider>;
}

export function useI18n(): I18n {
  const c = useContext(Ctx);
  if (!c) throw new Error("useI18n outside I18nProvider");
  return c;
}
