//! How a document writes dates, numbers and money in each of its languages (`en`,
//! `fr`, `ar`), after the CLDR conventions of each: `December 5, 2026` and `€1,234.56`;
//! `5 décembre 2026` and `1 234,56 €`; `٥ ديسمبر ٢٠٢٦` and `١٬٢٣٤٫٥٦ €` (Arabic-Indic
//! digits, right to left). Document numbers, SKUs and codes stay as they are.

use chrono::{Datelike, NaiveDate};

use crate::model::billing::PaymentTerms;
use crate::values::{Currency, Percent};

/// One of the languages documents are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// English.
    En,
    /// French.
    Fr,
    /// Arabic, right to left.
    Ar,
}

const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const MONTHS_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTHS_AR: [&str; 12] =
    ["يناير", "فبراير", "مارس", "أبريل", "مايو", "يونيو", "يوليو", "أغسطس", "سبتمبر", "أكتوبر", "نوفمبر", "ديسمبر"];

impl Locale {
    /// The locale of a language tag (`fr-CA` → French); English when unsupported.
    pub fn of(lang: &str) -> Self {
        match crate::mail::language(Some(lang)) {
            "fr" => Locale::Fr,
            "ar" => Locale::Ar,
            _ => Locale::En,
        }
    }

    /// Its language code.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Fr => "fr",
            Locale::Ar => "ar",
        }
    }

    /// Written right to left.
    pub fn rtl(self) -> bool {
        self == Locale::Ar
    }

    /// Digits in the locale's script.
    fn digits(self, s: &str) -> String {
        match self {
            Locale::Ar => s
                .chars()
                .map(|c| match c.to_digit(10) {
                    Some(d) => char::from_u32(0x0660 + d).unwrap_or(c),
                    None => c,
                })
                .collect(),
            _ => s.to_string(),
        }
    }

    /// A date in words: `December 5, 2026`, `5 décembre 2026`, `٥ ديسمبر ٢٠٢٦`.
    pub fn date(self, d: NaiveDate) -> String {
        let m = d.month0() as usize;
        match self {
            Locale::En => format!("{} {}, {}", MONTHS_EN[m], d.day(), d.year()),
            Locale::Fr => format!("{} {} {}", d.day(), MONTHS_FR[m], d.year()),
            Locale::Ar => self.digits(&format!("{} {} {}", d.day(), MONTHS_AR[m], d.year())),
        }
    }

    /// An integer with grouped thousands: `12,345`, `12 345`, `١٢٬٣٤٥`.
    pub fn integer(self, n: i64) -> String {
        let group = match self {
            Locale::En => ",",
            Locale::Fr => "\u{202f}",
            Locale::Ar => "\u{066c}",
        };
        let digits = n.unsigned_abs().to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
        if n < 0 {
            out.push('-');
        }
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(group);
            }
            out.push(c);
        }
        self.digits(&out)
    }

    /// A decimal of `exp` places from an integer of its smallest unit
    /// (`123456`, 2 → `1,234.56`, `1 234,56`, `١٬٢٣٤٫٥٦`).
    pub fn decimal(self, units: i64, exp: u32) -> String {
        if exp == 0 {
            return self.integer(units);
        }
        let div = 10u64.pow(exp);
        let a = units.unsigned_abs();
        let whole = i64::try_from(a / div).unwrap_or(i64::MAX);
        let sign = if units < 0 { "-" } else { "" };
        let point = match self {
            Locale::En => ".",
            Locale::Fr => ",",
            Locale::Ar => "\u{066b}",
        };
        let frac = self.digits(&format!("{:0width$}", a % div, width = exp as usize));
        format!("{sign}{}{point}{frac}", self.integer(whole))
    }

    /// An amount of minor units with its currency: `€1,234.56`, `1 234,56 €`,
    /// `١٬٢٣٤٫٥٦ €`; a currency without a symbol of its own is written by its code.
    pub fn money(self, minor: i64, currency: &Currency) -> String {
        let number = self.decimal(minor.abs(), currency.exponent());
        let sign = if minor < 0 { "-" } else { "" };
        let symbol = symbol(currency);
        match self {
            Locale::En if symbol.chars().all(|c| !c.is_alphabetic()) => format!("{sign}{symbol}{number}"),
            Locale::En => format!("{sign}{symbol}\u{a0}{number}"),
            Locale::Fr | Locale::Ar => format!("{sign}{number}\u{a0}{symbol}"),
        }
    }

    /// A tax or discount rate: `20%`, `5.5 %`, `٥٫٥٪`.
    pub fn percent(self, p: Percent) -> String {
        let bp = i64::from(p.basis_points());
        let n = if bp % 100 == 0 { self.integer(bp / 100) } else { self.decimal(bp, 2).trim_end_matches('0').into() };
        match self {
            Locale::En => format!("{n}%"),
            Locale::Fr => format!("{n}\u{a0}%"),
            Locale::Ar => format!("{n}\u{066a}"),
        }
    }

    /// Payment terms in words.
    pub fn terms(self, t: PaymentTerms) -> String {
        use PaymentTerms as P;
        let days = |n: i64| match self {
            Locale::En => format!("Net {n} days"),
            Locale::Fr => format!("{n} jours net"),
            Locale::Ar => self.digits(&format!("صافي {n} يومًا")),
        };
        match (t, self) {
            (P::DueOnReceipt, Locale::En) => "Due on receipt".into(),
            (P::DueOnReceipt, Locale::Fr) => "Payable à réception".into(),
            (P::DueOnReceipt, Locale::Ar) => "مستحقة عند الاستلام".into(),
            (P::Net7, _) => days(7),
            (P::Net10, _) => days(10),
            (P::Net15, _) => days(15),
            (P::Net30, _) => days(30),
            (P::Net45, _) => days(45),
            (P::Net60, _) => days(60),
            (P::Net90, _) => days(90),
            (P::EndOfMonth, Locale::En) => "End of month".into(),
            (P::EndOfMonth, Locale::Fr) => "Fin de mois".into(),
            (P::EndOfMonth, Locale::Ar) => "نهاية الشهر".into(),
            (P::EndOfNextMonth, Locale::En) => "End of next month".into(),
            (P::EndOfNextMonth, Locale::Fr) => "Fin du mois suivant".into(),
            (P::EndOfNextMonth, Locale::Ar) => "نهاية الشهر التالي".into(),
        }
    }

    /// The words of a document, by key.
    pub fn label(self, key: Label) -> &'static str {
        use Label as L;
        match (self, key) {
            (Locale::En, L::Invoice) => "Invoice",
            (Locale::En, L::CreditNote) => "Credit note",
            (Locale::En, L::Quote) => "Quote",
            (Locale::En, L::Number) => "Number",
            (Locale::En, L::IssueDate) => "Issue date",
            (Locale::En, L::DueDate) => "Due date",
            (Locale::En, L::ValidUntil) => "Valid until",
            (Locale::En, L::Period) => "Period",
            (Locale::En, L::Terms) => "Payment terms",
            (Locale::En, L::BillTo) => "Bill to",
            (Locale::En, L::From) => "From",
            (Locale::En, L::TaxId) => "VAT",
            (Locale::En, L::Item) => "Description",
            (Locale::En, L::Quantity) => "Qty",
            (Locale::En, L::UnitPrice) => "Unit price",
            (Locale::En, L::Discount) => "Discount",
            (Locale::En, L::Tax) => "Tax",
            (Locale::En, L::Amount) => "Amount",
            (Locale::En, L::Subtotal) => "Subtotal",
            (Locale::En, L::TaxAt) => "Tax at",
            (Locale::En, L::Total) => "Total",
            (Locale::En, L::Paid) => "Paid",
            (Locale::En, L::Credited) => "Credited",
            (Locale::En, L::BalanceDue) => "Balance due",
            (Locale::En, L::Instructions) => "Payment instructions",
            (Locale::En, L::PayOnline) => "Pay online",
            (Locale::En, L::Notes) => "Notes",
            (Locale::En, L::Credits) => "Credits invoice",
            (Locale::En, L::Page) => "Page",
            (Locale::En, L::Of) => "of",
            (Locale::En, L::Void) => "VOID",
            (Locale::En, L::PaidStamp) => "PAID",
            (Locale::En, L::Draft) => "DRAFT",
            (Locale::Fr, L::Invoice) => "Facture",
            (Locale::Fr, L::CreditNote) => "Avoir",
            (Locale::Fr, L::Quote) => "Devis",
            (Locale::Fr, L::Number) => "Numéro",
            (Locale::Fr, L::IssueDate) => "Date d'émission",
            (Locale::Fr, L::DueDate) => "Date d'échéance",
            (Locale::Fr, L::ValidUntil) => "Valable jusqu'au",
            (Locale::Fr, L::Period) => "Période",
            (Locale::Fr, L::Terms) => "Conditions de paiement",
            (Locale::Fr, L::BillTo) => "Facturé à",
            (Locale::Fr, L::From) => "Émetteur",
            (Locale::Fr, L::TaxId) => "TVA",
            (Locale::Fr, L::Item) => "Désignation",
            (Locale::Fr, L::Quantity) => "Qté",
            (Locale::Fr, L::UnitPrice) => "Prix unitaire",
            (Locale::Fr, L::Discount) => "Remise",
            (Locale::Fr, L::Tax) => "TVA",
            (Locale::Fr, L::Amount) => "Montant",
            (Locale::Fr, L::Subtotal) => "Total HT",
            (Locale::Fr, L::TaxAt) => "TVA à",
            (Locale::Fr, L::Total) => "Total TTC",
            (Locale::Fr, L::Paid) => "Payé",
            (Locale::Fr, L::Credited) => "Avoirs",
            (Locale::Fr, L::BalanceDue) => "Reste à payer",
            (Locale::Fr, L::Instructions) => "Modalités de paiement",
            (Locale::Fr, L::PayOnline) => "Payer en ligne",
            (Locale::Fr, L::Notes) => "Notes",
            (Locale::Fr, L::Credits) => "Avoir sur la facture",
            (Locale::Fr, L::Page) => "Page",
            (Locale::Fr, L::Of) => "sur",
            (Locale::Fr, L::Void) => "ANNULÉE",
            (Locale::Fr, L::PaidStamp) => "PAYÉE",
            (Locale::Fr, L::Draft) => "BROUILLON",
            (Locale::Ar, L::Invoice) => "فاتورة",
            (Locale::Ar, L::CreditNote) => "إشعار دائن",
            (Locale::Ar, L::Quote) => "عرض سعر",
            (Locale::Ar, L::Number) => "الرقم",
            (Locale::Ar, L::IssueDate) => "تاريخ الإصدار",
            (Locale::Ar, L::DueDate) => "تاريخ الاستحقاق",
            (Locale::Ar, L::ValidUntil) => "صالح حتى",
            (Locale::Ar, L::Period) => "الفترة",
            (Locale::Ar, L::Terms) => "شروط الدفع",
            (Locale::Ar, L::BillTo) => "فاتورة إلى",
            (Locale::Ar, L::From) => "من",
            (Locale::Ar, L::TaxId) => "الرقم الضريبي",
            (Locale::Ar, L::Item) => "الوصف",
            (Locale::Ar, L::Quantity) => "الكمية",
            (Locale::Ar, L::UnitPrice) => "سعر الوحدة",
            (Locale::Ar, L::Discount) => "الخصم",
            (Locale::Ar, L::Tax) => "الضريبة",
            (Locale::Ar, L::Amount) => "المبلغ",
            (Locale::Ar, L::Subtotal) => "المجموع الفرعي",
            (Locale::Ar, L::TaxAt) => "ضريبة بنسبة",
            (Locale::Ar, L::Total) => "الإجمالي",
            (Locale::Ar, L::Paid) => "المدفوع",
            (Locale::Ar, L::Credited) => "المُسترد",
            (Locale::Ar, L::BalanceDue) => "الرصيد المستحق",
            (Locale::Ar, L::Instructions) => "تعليمات الدفع",
            (Locale::Ar, L::PayOnline) => "ادفع عبر الإنترنت",
            (Locale::Ar, L::Notes) => "ملاحظات",
            (Locale::Ar, L::Credits) => "إشعار دائن للفاتورة",
            (Locale::Ar, L::Page) => "صفحة",
            (Locale::Ar, L::Of) => "من",
            (Locale::Ar, L::Void) => "ملغاة",
            (Locale::Ar, L::PaidStamp) => "مدفوعة",
            (Locale::Ar, L::Draft) => "مسودة",
        }
    }
}

/// The words a document prints, looked up with [`Locale::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Label {
    Invoice,
    CreditNote,
    Quote,
    Number,
    IssueDate,
    DueDate,
    ValidUntil,
    Period,
    Terms,
    BillTo,
    From,
    TaxId,
    Item,
    Quantity,
    UnitPrice,
    Discount,
    Tax,
    Amount,
    Subtotal,
    TaxAt,
    Total,
    Paid,
    Credited,
    BalanceDue,
    Instructions,
    PayOnline,
    Notes,
    Credits,
    Page,
    Of,
    Void,
    PaidStamp,
    Draft,
}

/// The symbol a currency is written with (`€`, `$`, `£`), or its code when it has no
/// symbol of its own or the symbol is ambiguous.
fn symbol(c: &Currency) -> String {
    match c.code() {
        "EUR" => "€".into(),
        "USD" => "$".into(),
        "GBP" => "£".into(),
        "JPY" => "¥".into(),
        "INR" => "₹".into(),
        "KRW" => "₩".into(),
        "ILS" => "₪".into(),
        "NGN" => "₦".into(),
        "VND" => "₫".into(),
        code => code.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    #[test]
    fn dates_follow_each_language() {
        assert_eq!(Locale::En.date(d(2026, 12, 5)), "December 5, 2026");
        assert_eq!(Locale::Fr.date(d(2026, 8, 1)), "1 août 2026");
        assert_eq!(Locale::Ar.date(d(2026, 12, 5)), "٥ ديسمبر ٢٠٢٦");
    }

    #[test]
    fn money_follows_each_language() {
        let eur = Currency::parse("EUR").unwrap_or_default();
        let chf = Currency::parse("CHF").unwrap_or_default();
        let jpy = Currency::parse("JPY").unwrap_or_default();
        assert_eq!(Locale::En.money(123_456_789, &eur), "€1,234,567.89");
        assert_eq!(Locale::En.money(-505, &eur), "-€5.05");
        assert_eq!(Locale::En.money(1999, &chf), "CHF\u{a0}19.99");
        assert_eq!(Locale::En.money(1500, &jpy), "¥1,500");
        assert_eq!(Locale::Fr.money(123_456, &eur), "1\u{202f}234,56\u{a0}€");
        assert_eq!(Locale::Fr.money(5, &eur), "0,05\u{a0}€");
        assert_eq!(Locale::Ar.money(123_456, &eur), "١٬٢٣٤٫٥٦\u{a0}€");
    }

    #[test]
    fn numbers_and_rates_follow_each_language() {
        assert_eq!(Locale::En.integer(1_000), "1,000");
        assert_eq!(Locale::En.integer(999), "999");
        assert_eq!(Locale::En.integer(-1_234_567), "-1,234,567");
        assert_eq!(Locale::Fr.integer(12_345), "12\u{202f}345");
        let p = |bp| Percent::from_basis_points(bp).unwrap_or_default();
        assert_eq!(Locale::En.percent(p(2000)), "20%");
        assert_eq!(Locale::Fr.percent(p(550)), "5,5\u{a0}%");
        assert_eq!(Locale::Ar.percent(p(1500)), "١٥٪");
        assert_eq!(Locale::Ar.terms(PaymentTerms::Net30), "صافي ٣٠ يومًا");
    }
}
