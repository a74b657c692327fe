//! Dates and times that people pick: a due date, a close date, when a call happened.
//!
//! People type `2030-01-15`; programs send `2030-01-15T09:00:00Z`. Fields of this type take
//! either. A bare date is read in the time zone of the user who sent it (their settings'
//! `timezone`, UTC by default), and each field says which moment of that day it means:
//! a deadline (`dueDate`, a report's `asOf`) the end of the day, a start (`occurredAt`,
//! `engagementStart`, a suspension's `until`) its beginning. Answers always carry RFC 3339
//! UTC times (`2030-01-15T22:59:59.999Z`), or dates for fields that hold only a date.

use std::fmt;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A date (`YYYY-MM-DD`) or an RFC 3339 time (any offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateOrTime {
    /// A calendar day, in the time zone of whoever gave it.
    Date(NaiveDate),
    /// A moment.
    Time(DateTime<Utc>),
}

impl DateOrTime {
    /// Reads `2030-01-15` or `2030-01-15T09:00:00+01:00`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(Self::Time(t.with_timezone(&Utc)));
        }
        if s.len() == 10 {
            return NaiveDate::parse_from_str(s, "%Y-%m-%d").ok().map(Self::Date);
        }
        None
    }

    /// The moment: a time as it is, a date at the first instant of that day in `tz`.
    pub fn start_of_day_in(self, tz: Tz) -> DateTime<Utc> {
        match self {
            Self::Time(t) => t,
            Self::Date(d) => first_instant(d, tz),
        }
    }

    /// The moment: a time as it is, a date at the last millisecond of that day in `tz`.
    pub fn end_of_day_in(self, tz: Tz) -> DateTime<Utc> {
        match self {
            Self::Time(t) => t,
            Self::Date(d) => match d.checked_add_days(Days::new(1)) {
                Some(next) => first_instant(next, tz) - chrono::Duration::milliseconds(1),
                None => DateTime::<Utc>::MAX_UTC,
            },
        }
    }

    /// The calendar day: a date as it is, a time's day in `tz`.
    pub fn date_in(self, tz: Tz) -> NaiveDate {
        match self {
            Self::Date(d) => d,
            Self::Time(t) => t.with_timezone(&tz).date_naive(),
        }
    }

    /// True for a bare date (its reading needs the user's time zone).
    pub fn is_date(self) -> bool {
        matches!(self, Self::Date(_))
    }
}

/// The first instant of `d` in `tz` (midnight, or later on a day that skips it).
fn first_instant(d: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let mut t = d.and_time(NaiveTime::MIN);
    // A daylight-saving gap can skip midnight: take the first hour that exists.
    for _ in 0..4 {
        if let Some(local) = tz.from_local_datetime(&t).earliest() {
            return local.with_timezone(&Utc);
        }
        t += chrono::Duration::hours(1);
    }
    d.and_time(NaiveTime::MIN).and_utc()
}

impl From<DateTime<Utc>> for DateOrTime {
    fn from(t: DateTime<Utc>) -> Self {
        Self::Time(t)
    }
}

impl From<NaiveDate> for DateOrTime {
    fn from(d: NaiveDate) -> Self {
        Self::Date(d)
    }
}

impl fmt::Display for DateOrTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Date(d) => write!(f, "{}", d.format("%Y-%m-%d")),
            Self::Time(t) => write!(f, "{}", t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        }
    }
}

impl Serialize for DateOrTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DateOrTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not a date (YYYY-MM-DD) or an RFC 3339 time")))
    }
}

/// serde's `deserialize_with` for an optional UTC time that may also be given as a date,
/// meaning its midnight UTC (the report parameters, whose days are UTC days).
pub fn option_utc<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    Ok(Option::<DateOrTime>::deserialize(d)?.map(|w| w.start_of_day_in(Tz::UTC)))
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for DateOrTime {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .description(Some("A date (YYYY-MM-DD, read in the user's time zone) or an RFC 3339 time"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for DateOrTime {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_dates_and_times() {
        let d = DateOrTime::parse("2030-01-15").unwrap();
        assert!(d.is_date());
        let paris: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(d.end_of_day_in(paris).to_rfc3339(), "2030-01-15T22:59:59.999+00:00");
        assert_eq!(d.start_of_day_in(paris).to_rfc3339(), "2030-01-14T23:00:00+00:00");
        assert_eq!(d.end_of_day_in(Tz::UTC).to_rfc3339(), "2030-01-15T23:59:59.999+00:00");
        let t = DateOrTime::parse("2030-01-15T23:30:00-05:00").unwrap();
        assert_eq!(t.end_of_day_in(paris).to_rfc3339(), "2030-01-16T04:30:00+00:00");
        assert_eq!(t.date_in(paris).to_string(), "2030-01-16");
        for bad in ["2030-13-45", "2030-02-30", "tomorrow", "", "2030-1-5", "2030-01-15T25:00:00Z"] {
            assert!(DateOrTime::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_starts_at_its_first_hour() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2022-09-11.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let start = DateOrTime::Date(NaiveDate::from_ymd_opt(2022, 9, 11).unwrap()).start_of_day_in(tz);
        assert_eq!(start.to_rfc3339(), "2022-09-11T04:00:00+00:00");
    }
}
