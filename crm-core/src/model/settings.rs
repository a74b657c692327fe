//! A user's preferences: which notifications reach them on which channel, their
//! language and time zone, and how lists and dates are shown. Stored in the user's
//! `settings` object; every write is validated here, unknown keys refused.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Errors, Result};
use crate::model::JsonObject;

/// The events a user can be notified of.
pub const NOTIFICATION_EVENTS: [&str; 10] = [
    "task.assigned",
    "task.due",
    "deal.assigned",
    "deal.stage_changed",
    "deal.won",
    "deal.lost",
    "contact.assigned",
    "account.security",
    "record.changed",
    "invoice.paid",
];

/// The channels notifications go out on.
pub const CHANNELS: [&str; 4] = ["email", "slack", "teams", "in_app"];

/// The languages of the interface and the emails.
pub const LANGUAGES: [&str; 3] = ["en", "fr", "ar"];

/// The longest a reminder may come before a task is due: a week, in minutes.
pub const MAX_REMINDER_MINUTES: u32 = 7 * 24 * 60;

/// The date formats a user may choose for display.
pub const DATE_FORMATS: [&str; 4] = ["YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "DD.MM.YYYY"];

/// The colour themes a user may choose; `system` follows the browser.
pub const THEMES: [&str; 3] = ["system", "light", "dark"];

/// How often an event reaches a user on a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    /// Not at all.
    Off,
    /// As it happens.
    Immediate,
    /// Gathered into one message a day, at the user's `digestHour` in their time zone
    /// (email, Slack and Teams; the app lists notifications as they come).
    Digest,
}

impl Frequency {
    /// Every frequency.
    pub const ALL: [Frequency; 3] = [Frequency::Off, Frequency::Immediate, Frequency::Digest];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Off => "off",
            Frequency::Immediate => "immediate",
            Frequency::Digest => "digest",
        }
    }
}

/// `"immediate"`, `"digest"`, `"off"`, or — as before frequencies existed — `true`
/// (immediate) and `false` (off).
impl<'de> Deserialize<'de> for Frequency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            On(bool),
            Named(String),
        }
        let wrong = || serde::de::Error::custom("expected \"immediate\", \"digest\" or \"off\"");
        match Raw::deserialize(d).map_err(|_| wrong())? {
            Raw::On(true) => Ok(Frequency::Immediate),
            Raw::On(false) => Ok(Frequency::Off),
            Raw::Named(n) => Frequency::ALL.into_iter().find(|f| f.as_str() == n).ok_or_else(wrong),
        }
    }
}

/// How things are shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DisplayOptions {
    /// One of [`DATE_FORMATS`].
    pub date_format: String,
    /// Rows per page, 10 to 200.
    pub page_size: u32,
    /// One of [`THEMES`].
    pub theme: String,
}

impl Default for DisplayOptions {
    fn default() -> Self {
        Self { date_format: "YYYY-MM-DD".into(), page_size: 25, theme: "system".into() }
    }
}

/// The most cards a dashboard holds, a user's or a saved one (few cards load fast;
/// Metabase's advice).
pub const MAX_DASHBOARD_CARDS: usize = 24;

/// One card of a dashboard: a user's own (settings) or a saved one (a saved report's
/// `cards`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DashboardCard {
    /// A standard report's name (`r1_pipeline_by_stage`) or a saved report's id (one the
    /// user owns or that is shared with them; a card whose report is gone says so).
    pub report: String,
    /// How many of the grid's columns it spans: 1 or 2.
    #[serde(default = "one")]
    pub width: u8,
}

fn one() -> u8 {
    1
}

/// Checks what can be told of dashboard cards without a store: at most
/// [`MAX_DASHBOARD_CARDS`], each one or two columns wide and naming a standard report or
/// a saved report's id. Errors name `{field}` and `{field}.{i}.report`/`.width`; false
/// when there are too many cards to look at one by one. (A user's dashboard and a saved
/// one share it; the saved reports' service checks the ids further.)
pub fn check_card_shapes(cards: &[DashboardCard], field: &str, errs: &mut Errors) -> bool {
    if cards.len() > MAX_DASHBOARD_CARDS {
        errs.add(field, "too_long", format!("a dashboard holds at most {MAX_DASHBOARD_CARDS} cards"));
        return false;
    }
    for (i, card) in cards.iter().enumerate() {
        let standard = crate::model::report::StandardReport::CHOICES.contains(&card.report.as_str());
        if !standard && card.report.parse::<uuid::Uuid>().is_err() {
            errs.add(
                format!("{field}.{i}.report"),
                "invalid_value",
                format!(
                    "'{}' is neither a saved report's id nor one of {}",
                    card.report,
                    crate::model::report::StandardReport::CHOICES.join(", ")
                ),
            );
        }
        if !(1..=2).contains(&card.width) {
            errs.add(format!("{field}.{i}.width"), "out_of_range", "a card spans 1 or 2 columns");
        }
    }
    true
}

/// A user's preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UserSettings {
    /// Event → channel → `immediate`, `digest` or `off` (`true` and `false` are read as
    /// `immediate` and `off`). Events and channels not named take the defaults: email
    /// and in-app immediate, chat off; `record.changed` in-app only. Security emails
    /// (`account.security` by email) are always sent.
    pub notification_preferences: BTreeMap<String, BTreeMap<String, Frequency>>,
    /// One of [`LANGUAGES`].
    pub language: String,
    /// An IANA time zone (`Europe/Paris`).
    pub timezone: String,
    /// How lists and numbers are shown (page size, date format, theme).
    pub display_options: DisplayOptions,
    /// How long before a task is due its reminder (`task.due`) comes, in minutes (5 to
    /// 10,080: a week).
    pub reminder_minutes: u32,
    /// The hour of the day (0 to 23, in `timezone`) digests are sent at.
    pub digest_hour: u32,
    /// The cards of the user's dashboard, in order; absent: the eight standard reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dashboard: Option<Vec<DashboardCard>>,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            notification_preferences: BTreeMap::new(),
            language: "en".into(),
            timezone: "UTC".into(),
            display_options: DisplayOptions::default(),
            reminder_minutes: 60,
            digest_hour: 8,
            dashboard: None,
        }
    }
}

fn one_of(errs: &mut Errors, field: &str, value: &str, allowed: &[&str]) -> bool {
    let known = allowed.contains(&value);
    if !known {
        errs.add(field, "invalid_value", format!("'{value}' is not one of {}", allowed.join(", ")));
    }
    known
}

/// A language the client gave under `field`, checked against [`LANGUAGES`]: kept when
/// known, an error naming the field otherwise.
pub fn language(errs: &mut Errors, field: &str, value: Option<String>) -> Option<String> {
    value.filter(|l| one_of(errs, field, l, &LANGUAGES))
}

impl UserSettings {
    /// The settings stored in a user's `settings` object (defaults for what is missing).
    pub fn from_stored(obj: &JsonObject) -> Self {
        serde_json::from_value(serde_json::Value::Object(obj.clone())).unwrap_or_default()
    }

    /// Validated settings from client input (a whole or partial object): unknown keys,
    /// events, channels, languages, time zones and options are refused, all at once.
    pub fn parse(input: &JsonObject) -> Result<Self> {
        let s: UserSettings = crate::decode::from_json(serde_json::Value::Object(input.clone()))?;
        s.validate()?;
        Ok(s)
    }

    /// Checks every value.
    pub fn validate(&self) -> Result<()> {
        let mut errs = Errors::new();
        for (event, channels) in &self.notification_preferences {
            if !NOTIFICATION_EVENTS.contains(&event.as_str()) {
                errs.add(
                    format!("notificationPreferences.{event}"),
                    "invalid_value",
                    format!("unknown event; one of {}", NOTIFICATION_EVENTS.join(", ")),
                );
            }
            for (channel, frequency) in channels {
                let field = format!("notificationPreferences.{event}.{channel}");
                if !CHANNELS.contains(&channel.as_str()) {
                    errs.add(field, "invalid_value", format!("unknown channel; one of {}", CHANNELS.join(", ")));
                } else if channel == "in_app" && *frequency == Frequency::Digest {
                    errs.add(field, "invalid_value", "the app lists notifications as they come: immediate or off");
                } else if event == "account.security" && channel == "email" && *frequency != Frequency::Immediate {
                    errs.add(field, "invalid_value", "security emails are always sent at once");
                }
            }
        }
        one_of(&mut errs, "language", &self.language, &LANGUAGES);
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            errs.add("timezone", "invalid_value", format!("'{}' is not an IANA time zone", self.timezone));
        }
        let d = &self.display_options;
        one_of(&mut errs, "displayOptions.dateFormat", &d.date_format, &DATE_FORMATS);
        one_of(&mut errs, "displayOptions.theme", &d.theme, &THEMES);
        if !(5..=MAX_REMINDER_MINUTES).contains(&self.reminder_minutes) {
            errs.add("reminderMinutes", "out_of_range", "a reminder comes 5 minutes to a week before the task is due");
        }
        if self.digest_hour > 23 {
            errs.add("digestHour", "out_of_range", "an hour of the day, 0 to 23");
        }
        if !(10..=200).contains(&d.page_size) {
            errs.add("displayOptions.pageSize", "out_of_range", "rows per page are from 10 to 200");
        }
        check_card_shapes(self.dashboard.as_deref().unwrap_or_default(), "dashboard", &mut errs);
        errs.finish()
    }

    /// How `event` reaches the user on `channel`.
    pub fn wants(&self, event: &str, channel: &str) -> Frequency {
        let on = |yes: bool| if yes { Frequency::Immediate } else { Frequency::Off };
        if event == "account.security" && channel == "email" {
            return Frequency::Immediate;
        }
        match self.notification_preferences.get(event).and_then(|c| c.get(channel)) {
            Some(f) => *f,
            // A change to a record you own is shown in the app only, unless asked for.
            None if event == "record.changed" => on(channel == "in_app"),
            None => on(matches!(channel, "email" | "in_app")),
        }
    }

    /// When the next digest after `now` goes out: the next `digest_hour` o'clock in the
    /// user's time zone (in a daylight-saving gap, the first instant after it).
    pub fn next_digest(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let tz: chrono_tz::Tz = self.timezone.parse().unwrap_or(chrono_tz::UTC);
        let today = now.with_timezone(&tz).date_naive();
        let hour = self.digest_hour.min(23);
        for day in 0..3 {
            let Some(date) = today.checked_add_days(chrono::Days::new(day)) else { break };
            let Some(naive) = date.and_hms_opt(hour, 0, 0) else { break };
            // A time skipped by a clock change falls to the hour after it.
            let at = tz
                .from_local_datetime(&naive)
                .earliest()
                .or_else(|| tz.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest());
            if let Some(at) = at.map(|t| t.with_timezone(&Utc)) {
                if at > now {
                    return at;
                }
            }
        }
        now + chrono::Duration::days(1)
    }

    /// The stored form.
    pub fn to_stored(&self) -> JsonObject {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => JsonObject::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> JsonObject {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn valid_settings_fill_in_defaults() {
        let s = UserSettings::parse(&obj(json!({
            "language": "fr",
            "timezone": "Europe/Paris",
            "notificationPreferences": {"deal.won": {"slack": true, "email": false}},
        })))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.display_options.page_size, 25);
        assert_eq!(
            (s.wants("deal.won", "slack"), s.wants("deal.won", "email")),
            (Frequency::Immediate, Frequency::Off)
        );
        assert_eq!(s.wants("task.assigned", "email"), Frequency::Immediate);
        assert_eq!(s.wants("task.assigned", "teams"), Frequency::Off);
        assert_eq!(UserSettings::from_stored(&s.to_stored()), s);
    }

    #[test]
    fn every_bad_value_is_named() {
        let e = UserSettings::parse(&obj(json!({
            "language": "xx",
            "timezone": "Mars/Olympus",
            "notificationPreferences": {
                "deal.exploded": {"email": true},
                "deal.won": {"pigeon": true, "in_app": "digest"},
                "account.security": {"email": "off"},
            },
            "digestHour": 24,
            "displayOptions": {"pageSize": 5000, "theme": "neon", "dateFormat": "YY"},
        })))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        let mut fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "digestHour",
                "displayOptions.dateFormat",
                "displayOptions.pageSize",
                "displayOptions.theme",
                "language",
                "notificationPreferences.account.security.email",
                "notificationPreferences.deal.exploded",
                "notificationPreferences.deal.won.in_app",
                "notificationPreferences.deal.won.pigeon",
                "timezone"
            ]
        );
        assert!(UserSettings::parse(&obj(json!({"colour": "red"}))).is_err(), "unknown keys are refused");
        let e = UserSettings::parse(&obj(json!({"notificationPreferences": {"deal.won": {"email": "weekly"}}})))
            .err()
            .unwrap_or_else(|| panic!("accepted"));
        assert!(e.to_string().contains("immediate"), "{e}");
    }

    #[test]
    fn a_dashboard_names_standard_or_saved_reports() {
        let s = UserSettings::parse(&obj(json!({"dashboard": [
            {"report": "r4_stage_funnel", "width": 2},
            {"report": "0190a4c1-2222-7000-8000-000000000002"},
        ]})))
        .unwrap_or_else(|e| panic!("{e}"));
        let cards = s.dashboard.clone().unwrap_or_default();
        assert_eq!((cards[0].width, cards[1].width), (2, 1));
        assert_eq!(UserSettings::from_stored(&s.to_stored()), s);
        let e = UserSettings::parse(&obj(json!({"dashboard": [
            {"report": "r9_horoscope"}, {"report": "r1_pipeline_by_stage", "width": 3},
        ]})))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        let fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["dashboard.0.report", "dashboard.1.width"]);
        let many = vec![json!({"report": "r4_stage_funnel"}); MAX_DASHBOARD_CARDS + 1];
        let e = UserSettings::parse(&obj(json!({ "dashboard": many }))).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(e.field_errors()[0].code, "too_long");
        assert!(UserSettings::default().to_stored().get("dashboard").is_none(), "the default is not stored");
    }

    #[test]
    fn frequencies_read_old_booleans_and_new_names() {
        let s = UserSettings::parse(&obj(json!({"notificationPreferences": {
            "deal.won": {"email": "digest", "slack": true, "in_app": false, "teams": "off"},
        }})))
        .unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<Frequency> =
            ["email", "slack", "in_app", "teams"].iter().map(|c| s.wants("deal.won", c)).collect();
        assert_eq!(got, [Frequency::Digest, Frequency::Immediate, Frequency::Off, Frequency::Off]);
        assert_eq!(s.to_stored()["notificationPreferences"]["deal.won"]["slack"], json!("immediate"));
        assert_eq!(s.wants("account.security", "email"), Frequency::Immediate, "security emails cannot be turned off");
    }

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn digests_go_out_at_the_local_hour() {
        let mut s = UserSettings { timezone: "Asia/Tokyo".into(), digest_hour: 9, ..Default::default() };
        // 09:00 in Tokyo is 00:00 UTC.
        assert_eq!(s.next_digest(at("2026-12-03T23:30:00Z")), at("2026-12-04T00:00:00Z"));
        assert_eq!(s.next_digest(at("2026-12-04T00:00:00Z")), at("2026-12-05T00:00:00Z"), "strictly after");
        s.timezone = "Europe/Paris".into();
        s.digest_hour = 8;
        assert_eq!(s.next_digest(at("2026-07-01T10:00:00Z")), at("2026-07-02T06:00:00Z"), "summer time");
        assert_eq!(s.next_digest(at("2026-12-01T10:00:00Z")), at("2026-12-02T07:00:00Z"), "winter time");
        // 02:00 does not exist in Paris on 29 March 2026: the digest comes at 03:00 CEST.
        s.digest_hour = 2;
        assert_eq!(s.next_digest(at("2026-03-28T12:00:00Z")), at("2026-03-29T01:00:00Z"));
        s.timezone = "Nowhere/Land".into();
        assert_eq!(s.next_digest(at("2026-03-28T12:00:00Z")), at("2026-03-29T02:00:00Z"), "UTC when unknown");
    }
}
