//! Multi-currency: dated exchange rates (entered or imported as CSV), and totals of
//! invoices in a reporting currency at the rate of each invoice's issue date. Every
//! invoice keeps its own currency; only the totals convert.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::{currency, BillingService};
use crate::error::{Error, Errors, Result};
use crate::model::billing::{DocumentType, ExchangeRate, InvoiceStatus};
use crate::policy::{Action, Actor};
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{to_row, EntityKind, Value};
use crate::store::{Changeset, StoreExt, Write};
use crate::values::Currency;

/// Rates are kept to nine decimals.
const SCALE: i128 = 1_000_000_000;

/// One rate as entered: 1 `base` = `rate` `quote` on `date`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateInput {
    /// ISO 4217 (`USD`).
    pub base: Option<String>,
    /// ISO 4217 (`EUR`).
    pub quote: Option<String>,
    /// The day it applies from.
    pub date: Option<NaiveDate>,
    /// A decimal with at most nine decimals (`"0.9235"`), as a string or a number.
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "0.9235"))]
    pub rate: Option<serde_json::Value>,
}

/// What an import took in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RateImport {
    /// Rates stored (new or changed).
    pub stored: usize,
}

/// Invoices of one currency in a total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CurrencyTotal {
    /// Their currency.
    pub currency: String,
    /// How many.
    pub invoices: usize,
    /// Σ totals (net of credit notes), in their currency.
    pub invoiced: i64,
    /// The same, in the reporting currency at each invoice's rate.
    pub converted: i64,
}

/// Invoice totals in a reporting currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct InvoiceTotals {
    /// The reporting currency.
    pub currency: String,
    /// Σ invoiced (credit notes subtracted), minor units of `currency`.
    pub invoiced: i64,
    /// Σ paid.
    pub paid: i64,
    /// Σ balance still due.
    pub outstanding: i64,
    /// By the invoices' own currency.
    pub by_currency: Vec<CurrencyTotal>,
}

/// Parses a rate: digits, one point, at most nine decimals, more than zero.
pub fn parse_rate(v: &serde_json::Value) -> Option<i64> {
    let text = match v {
        serde_json::Value::String(s) => s.trim().to_string(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    if int.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 9
    {
        return None;
    }
    let int: i128 = int.parse().ok()?;
    let frac_v: i128 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    let scaled = int.checked_mul(SCALE)?.checked_add(frac_v)?;
    (scaled > 0).then(|| i64::try_from(scaled).ok()).flatten()
}

/// A rate as text (`923500000` → `0.9235`).
pub fn format_rate(scaled: i64) -> String {
    let s = i128::from(scaled);
    let frac = format!("{:09}", s % SCALE);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        (s / SCALE).to_string()
    } else {
        format!("{}.{frac}", s / SCALE)
    }
}

/// Converts minor units of `from` into minor units of `to` at `rate` (scaled by 10⁹; 1
/// `from` = rate `to`), rounding half away from zero once, at the end.
pub fn convert(amount: i64, from: &Currency, to: &Currency, rate: i128) -> Option<i64> {
    let num = i128::from(amount).checked_mul(rate)?.checked_mul(10i128.pow(to.exponent()))?;
    let den = SCALE.checked_mul(10i128.pow(from.exponent()))?;
    let q = num / den;
    let r = num % den;
    let rounded = if r.abs() * 2 >= den { q + num.signum() } else { q };
    i64::try_from(rounded).ok()
}

fn rate_id(base: &str, quote: &str, date: NaiveDate) -> Uuid {
    crate::ids::derived_id(&[format!("billing.rate:{base}:{quote}:{date}").as_bytes()])
}

impl BillingService<'_> {
    /// Stores a rate (a second rate for the same pair and day replaces it).
    pub async fn set_rate(&self, actor: &Actor, input: RateInput) -> Result<ExchangeRate> {
        self.require(actor, Action::Update)?;
        let mut errs = Errors::new();
        let rate = self.checked_rate(&mut errs, "", input)?;
        errs.finish()?;
        let Some(r) = rate else { return Err(Error::invalid("rate", "required", "a rate is required")) };
        self.store_rates(actor, vec![r.clone()]).await?;
        Ok(r)
    }

    fn checked_rate(&self, errs: &mut Errors, at: &str, input: RateInput) -> Result<Option<ExchangeRate>> {
        let f = |n: &str| format!("{at}{n}");
        let base = currency(errs, &f("base"), input.base.clone());
        let quote = currency(errs, &f("quote"), input.quote.clone());
        for (v, n) in [(&input.base, "base"), (&input.quote, "quote")] {
            if v.is_none() {
                errs.add(f(n), "required", format!("{n} is required (ISO 4217)"));
            }
        }
        if input.date.is_none() {
            errs.add(f("date"), "required", "date is required (YYYY-MM-DD)");
        }
        let rate = match &input.rate {
            None => {
                errs.add(f("rate"), "required", "rate is required");
                None
            }
            Some(v) => match parse_rate(v) {
                Some(r) => Some(r),
                None => {
                    errs.add(
                        f("rate"),
                        "invalid_value",
                        "a rate is a positive decimal with at most nine decimals (\"0.9235\")",
                    );
                    None
                }
            },
        };
        if let (Some(b), Some(q)) = (&base, &quote) {
            if b == q {
                errs.add(f("quote"), "invalid_value", "a rate is between two different currencies");
            }
        }
        let (Some(base), Some(quote), Some(date), Some(rate)) = (base, quote, input.date, rate) else {
            return Ok(None);
        };
        let now = self.crm.now();
        Ok(Some(ExchangeRate {
            id: rate_id(base.code(), quote.code(), date),
            base,
            quote,
            date,
            rate: format_rate(rate),
            rate_e9: rate,
            updated_at: now,
            version: 1,
        }))
    }

    async fn store_rates(&self, actor: &Actor, rates: Vec<ExchangeRate>) -> Result<usize> {
        let k = EntityKind::ExchangeRate;
        let mut writes = Vec::new();
        for mut r in rates {
            match self.crm.store().get_as::<ExchangeRate>(r.id).await? {
                Some(old) if old.rate_e9 == r.rate_e9 => continue,
                Some(old) => {
                    r.version = old.version + 1;
                    writes.push(Write::Update { kind: k, row: to_row(&r)?, expected_version: old.version });
                }
                None => writes.push(Write::Insert { kind: k, row: to_row(&r)? }),
            }
        }
        let n = writes.len();
        if n > 0 {
            let audit = self.crm.audit_event(actor, "exchange_rates.stored".into(), k, None, json!({"rates": n}));
            self.crm.store().apply(Changeset { writes, audit: vec![audit] }).await?;
        }
        Ok(n)
    }

    /// Imports rates from CSV: a header `date,base,quote,rate` (any order, more columns
    /// ignored), one rate per line. All or nothing; errors name `line <n>.<column>`.
    pub async fn import_rates(&self, actor: &Actor, csv: &str) -> Result<RateImport> {
        self.require(actor, Action::Update)?;
        let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
        let header: Vec<String> = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let (Some(di), Some(bi), Some(qi), Some(ri)) = (col("date"), col("base"), col("quote"), col("rate")) else {
            return Err(Error::invalid(
                "body",
                "invalid_format",
                "the first line names the columns: date,base,quote,rate",
            ));
        };
        let mut errs = Errors::new();
        let mut rates = Vec::new();
        for (n, line) in lines.enumerate().take(100_000) {
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            let cell = |i: usize| cells.get(i).map(|s| s.to_string());
            let at = format!("line {}.", n + 2);
            let date = match cell(di).map(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d")) {
                Some(Ok(d)) => Some(d),
                _ => {
                    errs.add(format!("{at}date"), "invalid_format", "a date is YYYY-MM-DD");
                    None
                }
            };
            let input = RateInput {
                base: cell(bi),
                quote: cell(qi),
                date: date.or(NaiveDate::from_ymd_opt(1970, 1, 1)),
                rate: cell(ri).map(serde_json::Value::String),
            };
            if let Some(r) = self.checked_rate(&mut errs, &at, input)? {
                rates.push(r);
            }
        }
        errs.finish()?;
        Ok(RateImport { stored: self.store_rates(actor, rates).await? })
    }

    /// The rates stored, newest day first; of one pair when given.
    pub async fn rates(&self, actor: &Actor, base: Option<String>, quote: Option<String>) -> Result<Vec<ExchangeRate>> {
        self.require(actor, Action::Read)?;
        let k = EntityKind::ExchangeRate;
        let mut all = Vec::new();
        let mut errs = Errors::new();
        for (name, v) in [("base", base), ("quote", quote)] {
            if let Some(c) = currency(&mut errs, name, v) {
                all.push(Filter::Cmp(Cmp {
                    column: k.require_column(name)?,
                    pred: Predicate::Eq(Value::Text(c.code().into())),
                }));
            }
        }
        errs.finish()?;
        let q = StoreQuery {
            filter: if all.is_empty() { None } else { Some(Filter::And(all)) },
            sort: vec![SortKey { column: k.require_column("date")?, direction: Direction::Desc }],
            limit: 10_000,
            include_deleted: false,
        };
        self.crm.store().list_as(&q).await
    }

    /// The rate from `from` to `to` on `date`: the latest stored on or before it, direct
    /// or inverted; 1 for one currency. Scaled by 10⁹.
    pub async fn rate_on(&self, from: &Currency, to: &Currency, date: NaiveDate) -> Result<Option<i128>> {
        if from == to {
            return Ok(Some(SCALE));
        }
        let k = EntityKind::ExchangeRate;
        for (base, quote, inverse) in [(from, to, false), (to, from, true)] {
            let q = StoreQuery {
                filter: Some(Filter::And(vec![
                    Filter::Cmp(Cmp {
                        column: k.require_column("base")?,
                        pred: Predicate::Eq(Value::Text(base.code().into())),
                    }),
                    Filter::Cmp(Cmp {
                        column: k.require_column("quote")?,
                        pred: Predicate::Eq(Value::Text(quote.code().into())),
                    }),
                    Filter::Cmp(Cmp { column: k.require_column("date")?, pred: Predicate::Lte(Value::Date(date)) }),
                ])),
                sort: vec![SortKey { column: k.require_column("date")?, direction: Direction::Desc }],
                limit: 1,
                include_deleted: false,
            };
            if let Some(r) = self.crm.store().list_as::<ExchangeRate>(&q).await?.into_iter().next() {
                let rate = i128::from(r.rate_e9);
                return Ok(Some(if inverse { (SCALE * SCALE + rate / 2) / rate } else { rate }));
            }
        }
        Ok(None)
    }

    /// Totals of the issued invoices (credit notes subtracted) issued between `from` and
    /// `to`, in `reporting` at the rate of each one's issue date. A missing rate is an
    /// error naming the pair and the day.
    pub async fn totals(
        &self,
        actor: &Actor,
        reporting: Option<String>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<InvoiceTotals> {
        let list = self.all_invoices(actor).await?;
        let settings = self.current_settings().await?;
        let mut errs = Errors::new();
        let target = currency(&mut errs, "currency", reporting).unwrap_or(settings.currency);
        errs.finish()?;
        let (from, to) = (from.unwrap_or(NaiveDate::MIN), to.unwrap_or(NaiveDate::MAX));
        let mut out =
            InvoiceTotals { currency: target.code().into(), invoiced: 0, paid: 0, outstanding: 0, by_currency: vec![] };
        let mut missing: Vec<String> = Vec::new();
        for inv in list {
            if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
                continue;
            }
            let Some(day) = inv.issue_date.filter(|d| *d >= from && *d <= to) else { continue };
            let Some(rate) = self.rate_on(&inv.currency, &target, day).await? else {
                missing.push(format!("{}→{} on {day}", inv.currency, target));
                continue;
            };
            let sign = if inv.doc_type == DocumentType::CreditNote { -1 } else { 1 };
            let conv = |m: i64| {
                convert(m, &inv.currency, &target, rate).ok_or_else(|| Error::internal_msg("a conversion overflows"))
            };
            let total = conv(inv.total)?;
            out.invoiced += sign * total;
            if inv.doc_type == DocumentType::Invoice {
                out.paid += conv(inv.amount_paid)?;
                out.outstanding += conv(inv.balance.max(0))?;
            }
            match out.by_currency.iter_mut().find(|c| c.currency == inv.currency.code()) {
                Some(c) => {
                    c.invoices += 1;
                    c.invoiced += sign * inv.total;
                    c.converted += sign * total;
                }
                None => out.by_currency.push(CurrencyTotal {
                    currency: inv.currency.code().into(),
                    invoices: 1,
                    invoiced: sign * inv.total,
                    converted: sign * total,
                }),
            }
        }
        if !missing.is_empty() {
            missing.sort();
            missing.dedup();
            return Err(Error::invalid(
                "currency",
                "missing_rate",
                format!("no exchange rate for {}: add them at /api/exchange-rates", missing.join(", ")),
            ));
        }
        out.by_currency.sort_by(|a, b| a.currency.cmp(&b.currency));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_convert_exactly() -> Result<()> {
        assert_eq!(parse_rate(&json!("0.9235")), Some(923_500_000));
        assert_eq!(parse_rate(&json!(1.1)), Some(1_100_000_000));
        assert_eq!(parse_rate(&json!("151.25")), Some(151_250_000_000));
        for bad in [json!("0"), json!("-1"), json!("1.0000000001"), json!("abc"), json!("1e3"), json!(null)] {
            assert_eq!(parse_rate(&bad), None, "{bad}");
        }
        assert_eq!(format_rate(923_500_000), "0.9235");
        let (usd, eur, jpy) = (Currency::parse("USD")?, Currency::parse("EUR")?, Currency::parse("JPY")?);
        // 100.00 USD at 0.9235 = 92.35 EUR; 1,000 JPY at 0.0061 EUR = 6.10 EUR; 10.00 EUR at
        // 161.333 JPY = 1,613 JPY (half away from zero).
        assert_eq!(convert(10_000, &usd, &eur, 923_500_000), Some(9235));
        assert_eq!(convert(1000, &jpy, &eur, 6_100_000), Some(610));
        assert_eq!(convert(1000, &eur, &jpy, 161_333_000_000), Some(1613));
        assert_eq!(convert(-10_000, &usd, &eur, 923_500_000), Some(-9235));
        Ok(())
    }
}
