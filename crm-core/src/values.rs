//! Normalised value types: [`Email`], [`Phone`], [`Currency`], [`Money`], [`Percent`],
//! [`Domain`], and the text rules every free-text field shares.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// An email address, trimmed, lower-cased and checked for a plausible shape
/// (`local@domain.tld`, at most 254 characters).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    pub fn parse(raw: &str) -> Result<Self> {
        let s = raw.trim().to_lowercase();
        let bad = |why: &str| Error::invalid("email", "invalid_format", format!("not a valid email address: {why}"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        if s.chars().count() > 254 {
            return Err(Error::invalid("email", "too_long", "an email address has at most 254 characters"));
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(|| bad("no @"))?;
        if local.is_empty() || local.len() > 64 {
            return Err(bad("the part before @ must have 1 to 64 characters"));
        }
        if local.contains('@')
            || s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
        {
            return Err(bad("it holds characters an address cannot have"));
        }
        Domain::check(domain).map_err(|_| bad("the domain is not valid"))?;
        Ok(Email(s))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before `@`.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

/// An internet domain name, lower-cased (`acme.com`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Domain(String);

impl Domain {
    /// Parses a domain; a leading scheme (`https://`), `www.` and a trailing path are removed.
    pub fn parse(raw: &str) -> Result<Self> {
        let mut s = raw.trim().to_lowercase();
        for prefix in ["https://", "http://"] {
            if let Some(rest) = s.strip_prefix(prefix) {
                s = rest.to_string();
            }
        }
        if let Some(i) = s.find('/') {
            s.truncate(i);
        }
        if let Some(rest) = s.strip_prefix("www.") {
            s = rest.to_string();
        }
        Self::check(&s)?;
        Ok(Domain(s))
    }

    fn check(s: &str) -> Result<()> {
        let bad = || Error::invalid("domain", "invalid_format", format!("'{s}' is not a valid domain name"));
        if s.is_empty() || s.len() > 253 || !s.contains('.') {
            return Err(bad());
        }
        for label in s.split('.') {
            let ok = !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-');
            if !ok {
                return Err(bad());
            }
        }
        Ok(())
    }

    /// The domain.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Domain {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Domain::parse(&s)
    }
}

impl From<Domain> for String {
    fn from(d: Domain) -> String {
        d.0
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({})", self.0)
    }
}

/// A phone number in E.164 form (`+14155550123`).
///
/// Input is parsed with the `phonenumber` crate (libphonenumber's metadata): numbers in
/// international form always, national numbers when a default region is configured.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses a number written by a person, using `default_region` (ISO 3166 alpha-2)
    /// for numbers without a `+` country code.
    pub fn parse(raw: &str, default_region: Option<&str>) -> Result<Self> {
        let bad = |why: String| Error::invalid("phoneNumber", "invalid_format", why);
        let region = match default_region {
            Some(r) => {
                Some(r.parse::<phonenumber::country::Id>().map_err(|_| bad(format!("unknown default region '{r}'")))?)
            }
            None => None,
        };
        let parsed = phonenumber::parse(region, raw.trim()).map_err(|e| bad(format!("not a phone number: {e}")))?;
        if !phonenumber::is_valid(&parsed) {
            return Err(bad(format!("'{}' is not a valid phone number", raw.trim())));
        }
        Ok(Phone(parsed.format().mode(phonenumber::Mode::E164).to_string()))
    }

    /// The E.164 form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Phone {
    type Error = Error;
    /// Accepts stored values, which are already E.164: `+` and 6 to 15 digits.
    fn try_from(s: String) -> Result<Self> {
        let digits = s.strip_prefix('+').unwrap_or("");
        if (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Phone(s))
        } else {
            Phone::parse(&s, None)
        }
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.0)
    }
}

/// An ISO 4217 currency code (`USD`, `EUR`, `JPY`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// Parses a code, case-insensitively.
    pub fn parse(code: &str) -> Result<Self> {
        iso_currency::Currency::from_code(&code.trim().to_uppercase()).map(Currency).ok_or_else(|| {
            Error::invalid("currency", "invalid_value", format!("'{code}' is not an ISO 4217 currency code"))
        })
    }

    /// The three-letter code.
    pub fn code(&self) -> &'static str {
        self.0.code()
    }

    /// Digits after the decimal point of the minor unit (2 for USD, 0 for JPY).
    pub fn exponent(&self) -> u32 {
        u32::from(self.0.exponent().unwrap_or(2))
    }
}

impl Default for Currency {
    fn default() -> Self {
        Currency(iso_currency::Currency::USD)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Currency::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An amount of money: integer minor units (cents) and a currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Money {
    /// Minor units (cents for USD).
    pub minor: i64,
    /// The currency.
    pub currency: Currency,
}

impl Money {
    /// An amount.
    pub fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// The sum, or `None` on a currency mismatch or overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        self.minor.checked_add(other.minor).map(|minor| Money { minor, ..self })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exp = self.currency.exponent();
        if exp == 0 {
            return write!(f, "{} {}", self.minor, self.currency);
        }
        let scale = 10i64.pow(exp);
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        let scale = scale.unsigned_abs();
        write!(f, "{sign}{}.{:0width$} {}", abs / scale, abs % scale, self.currency, width = exp as usize)
    }
}

/// A percentage with two decimals, held as basis points (hundredths of a percent):
/// `12.5` is `Percent(1250)`. Between 0 and 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Percent(u32);

impl Percent {
    /// From basis points (0..=10_000).
    pub fn from_basis_points(bp: u32) -> Result<Self> {
        if bp > 10_000 {
            return Err(Error::invalid("percent", "out_of_range", "a percentage lies between 0 and 100"));
        }
        Ok(Percent(bp))
    }

    /// From a number such as `12.5`; at most two decimals.
    pub fn from_f64(p: f64) -> Result<Self> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(Error::invalid("percent", "out_of_range", "a percentage lies between 0 and 100"));
        }
        let bp = (p * 100.0).round();
        if ((p * 100.0) - bp).abs() > 1e-6 {
            return Err(Error::invalid("percent", "invalid_value", "a percentage has at most two decimals"));
        }
        Self::from_basis_points(bp as u32)
    }

    /// The rate in hundredths of a percent (`2000` is 20 %).
    pub fn basis_points(&self) -> u32 {
        self.0
    }

    /// Applies the percentage to an amount of minor units, rounding half away from zero.
    pub fn of(&self, minor: i64) -> Option<i64> {
        let num = i128::from(minor) * i128::from(self.0);
        let q = num / 10_000;
        let r = num % 10_000;
        let rounded = if r.abs() * 2 >= 10_000 { q + num.signum() } else { q };
        i64::try_from(rounded).ok()
    }
}

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_multiple_of(100) {
            s.serialize_u32(self.0 / 100)
        } else {
            s.serialize_f64(f64::from(self.0) / 100.0)
        }
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let p = f64::deserialize(d)?;
        Percent::from_f64(p).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
mod openapi {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, SchemaType, Type};
    use utoipa::openapi::{RefOr, Schema};

    impl utoipa::PartialSchema for super::Currency {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::String))
                .pattern(Some("^[A-Za-z]{3}$"))
                .description(Some("ISO 4217 currency code (`USD`, `EUR`, `JPY`)"))
                .examples(["EUR"])
                .into()
        }
    }
    impl utoipa::ToSchema for super::Currency {}

    impl utoipa::PartialSchema for super::Percent {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Number))
                .format(Some(SchemaFormat::Custom("decimal".into())))
                .minimum(Some(0.0))
                .maximum(Some(100.0))
                .description(Some("A percentage between 0 and 100 with at most two decimals"))
                .into()
        }
    }
    impl utoipa::ToSchema for super::Percent {}
}

/// Checks a free-text value: trimmed by the caller, at most `max` characters, and free of
/// control characters other than tab and newline (`multiline`). NUL is never accepted.
pub fn check_text(field: &str, value: &str, max: usize, multiline: bool) -> Result<()> {
    if value.chars().count() > max {
        return Err(Error::invalid(field, "too_long", format!("at most {max} characters")));
    }
    let bad = value.chars().any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t' || c == '\r')));
    if bad {
        return Err(Error::invalid(field, "invalid_value", "control characters are not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised() {
        assert_eq!(Email::parse("  Ann.Lee@Example.COM ").map(|e| e.0).ok(), Some("ann.lee@example.com".into()));
        for bad in ["", "a", "a@", "@b.com", "a@b", "a b@c.com", "a@@b.com", "a@-b.com"] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn phone_is_e164() {
        let p = Phone::parse("+1 (415) 555-2671", None).map(|p| p.0).ok();
        assert_eq!(p.as_deref(), Some("+14155552671"));
        assert_eq!(Phone::parse("01 42 68 53 00", Some("FR")).map(|p| p.0).ok().as_deref(), Some("+33142685300"));
        assert!(Phone::parse("12", None).is_err());
        assert!(Phone::parse("0142685300", None).is_err());
    }

    #[test]
    fn money_and_percent() {
        let usd = Currency::parse("usd").ok().unwrap_or_default();
        assert_eq!(Money::new(-1234, usd).to_string(), "-12.34 USD");
        assert_eq!(Money::new(5, Currency::parse("JPY").unwrap_or_default()).to_string(), "5 JPY");
        assert!(Currency::parse("XXQ").is_err());
        let p = Percent::from_f64(12.5).unwrap_or_default();
        assert_eq!(p.basis_points(), 1250);
        assert_eq!(p.of(1000), Some(125));
        assert_eq!(Percent::from_f64(33.33).map(|p| p.of(100)).ok(), Some(Some(33)));
        assert!(Percent::from_f64(12.345).is_err());
        assert!(Percent::from_f64(101.0).is_err());
    }

    #[test]
    fn domain_strips_scheme_and_www() {
        assert_eq!(Domain::parse("https://www.Acme.com/about").map(|d| d.0).ok().as_deref(), Some("acme.com"));
        assert!(Domain::parse("acme").is_err());
    }
}
