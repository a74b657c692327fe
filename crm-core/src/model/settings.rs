//! A user's preferences: which notifications reach them on which channel, their
//! language and time zone, and how lists and dates are shown. Stored in the user's
//! `settings` object; every write is validated here, unknown keys refused.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Errors, Result};
use crate::model::JsonObject;

/// The events a user can be notified of.
pub const NOTIFICATION_EVENTS: [&str; 9] = [
    "task.assigned",
    "task.due",
    "deal.assigned",
    "deal.stage_changed",
    "deal.won",
    "deal.lost",
    "contact.assigned",
    "account.security",
    "record.changed",
];

/// The channels notifications go out on.
pub const CHANNELS: [&str; 4] = ["email", "slack", "teams", "in_app"];

/// The languages of the interface and the emails.
pub const LANGUAGES: [&str; 3] = ["en", "fr", "ar"];

/// The longest a reminder may come before a task is due: a week, in minutes.
pub const MAX_REMINDER_MINUTES: u32 = 7 * 24 * 60;

/// Date formats.
pub const DATE_FORMATS: [&str; 4] = ["YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY", "DD.MM.YYYY"];

/// Themes.
pub const THEMES: [&str; 3] = ["system", "light", "dark"];

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

/// A user's preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct UserSettings {
    /// Event → channel → on/off. Events and channels not named take the defaults
    /// (email and in-app on, chat off; `record.changed` in-app only).
    pub notification_preferences: BTreeMap<String, BTreeMap<String, bool>>,
    /// One of [`LANGUAGES`].
    pub language: String,
    /// An IANA time zone (`Europe/Paris`).
    pub timezone: String,
    /// Display.
    pub display_options: DisplayOptions,
    /// How long before a task is due its reminder (`task.due`) comes, in minutes (5 to
    /// 10,080: a week).
    pub reminder_minutes: u32,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            notification_preferences: BTreeMap::new(),
            language: "en".into(),
            timezone: "UTC".into(),
            display_options: DisplayOptions::default(),
            reminder_minutes: 60,
        }
    }
}

fn one_of(errs: &mut Errors, field: &str, value: &str, allowed: &[&str]) {
    if !allowed.contains(&value) {
        errs.add(field, "invalid_value", format!("'{value}' is not one of {}", allowed.join(", ")));
    }
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
            for channel in channels.keys() {
                if !CHANNELS.contains(&channel.as_str()) {
                    errs.add(
                        format!("notificationPreferences.{event}.{channel}"),
                        "invalid_value",
                        format!("unknown channel; one of {}", CHANNELS.join(", ")),
                    );
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
        if !(10..=200).contains(&d.page_size) {
            errs.add("displayOptions.pageSize", "out_of_range", "rows per page are from 10 to 200");
        }
        errs.finish()
    }

    /// Does `event` reach the user on `channel`?
    pub fn wants(&self, event: &str, channel: &str) -> bool {
        match self.notification_preferences.get(event).and_then(|c| c.get(channel)) {
            Some(on) => *on,
            // A change to a record you own is shown in the app only, unless asked for.
            None if event == "record.changed" => channel == "in_app",
            None => matches!(channel, "email" | "in_app"),
        }
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
        assert!(s.wants("deal.won", "slack") && !s.wants("deal.won", "email"));
        assert!(s.wants("task.assigned", "email") && !s.wants("task.assigned", "teams"));
        assert_eq!(UserSettings::from_stored(&s.to_stored()), s);
    }

    #[test]
    fn every_bad_value_is_named() {
        let e = UserSettings::parse(&obj(json!({
            "language": "xx",
            "timezone": "Mars/Olympus",
            "notificationPreferences": {"deal.exploded": {"email": true}, "deal.won": {"pigeon": true}},
            "displayOptions": {"pageSize": 5000, "theme": "neon", "dateFormat": "YY"},
        })))
        .err()
        .unwrap_or_else(|| panic!("accepted"));
        let mut fields: Vec<&str> = e.field_errors().iter().map(|f| f.field.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            [
                "displayOptions.dateFormat",
                "displayOptions.pageSize",
                "displayOptions.theme",
                "language",
                "notificationPreferences.deal.exploded",
                "notificationPreferences.deal.won.pigeon",
                "timezone"
            ]
        );
        assert!(UserSettings::parse(&obj(json!({"colour": "red"}))).is_err(), "unknown keys are refused");
    }
}
