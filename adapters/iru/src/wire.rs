//! The JSON shapes of the Iru (Kandji) API this adapter reads (`shared/providers.md` §2), and
//! their mapping to core types. Public so the decoding can be tested against fixtures.
//!
//! Pitfalls handled here: `user` is an object when assigned but the **empty string** `""` when
//! not; device `tags` are tag **names**; error bodies are never decoded (the HTTP layer
//! summarises any of the documented shapes: `{"detail"}`, a bare string, an array, field
//! errors, HTML).

use chrono::{DateTime, NaiveDateTime, Utc};
use mdmsync_core::{MdmDeviceRecord, MdmUserId};
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};

/// `GET /api/v1/tags?search=`: a DRF page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagPage {
    /// Total number of tags matching the search (all pages).
    #[serde(default)]
    pub count: Option<u64>,
    /// The next page's URL, absolute; `null` on the last page.
    #[serde(default)]
    pub next: Option<String>,
    /// The previous page's URL.
    #[serde(default)]
    pub previous: Option<String>,
    /// The tags of this page.
    pub results: Vec<Tag>,
}

/// A tag: Iru's device group. Flat label, no smart/static flag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// The tag id (a UUID).
    pub id: String,
    /// The tag name; device `tags` arrays carry this, not the id.
    pub name: String,
}

/// One item of `GET /api/v1/devices` (a bare JSON array) or `GET /api/v1/devices/{id}`.
/// Only the fields the adapter uses; others are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device id (a UUID): the member id of tags and the id of blank push and links.
    pub device_id: String,
    /// The device name.
    #[serde(default)]
    pub device_name: Option<String>,
    /// The serial number.
    #[serde(default)]
    pub serial_number: Option<String>,
    /// Last check-in, RFC 3339.
    #[serde(default)]
    pub last_check_in: Option<String>,
    /// The assigned user: an object, or `""` (and tolerated: `null`, absent) when none.
    #[serde(default, deserialize_with = "user_or_empty")]
    pub user: Option<User>,
    /// Tag **names**. `None` when the field is absent (the sweep then cannot be used);
    /// `null` counts as no tags.
    #[serde(default, deserialize_with = "tags_or_null")]
    pub tags: Option<Vec<String>>,
}

/// The assigned user embedded in a device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user id (a UUID; a number is accepted and kept as text).
    #[serde(default, deserialize_with = "text_or_number")]
    pub id: Option<String>,
    /// The user's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The user's email.
    #[serde(default)]
    pub email: Option<String>,
    /// Whether the user is archived.
    #[serde(default)]
    pub is_archived: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawUser {
    Object(User),
    Text(String),
}

/// `user`: an object, or the empty string meaning "no user" (providers.md §2.4).
fn user_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Option<User>, D::Error> {
    match Option::<RawUser>::deserialize(d)? {
        None => Ok(None),
        Some(RawUser::Object(u)) => Ok(Some(u)),
        Some(RawUser::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(RawUser::Text(_)) => Err(D::Error::custom(
            "user must be an object or the empty string",
        )),
    }
}

fn tags_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Some(
        Option::<Vec<String>>::deserialize(d)?.unwrap_or_default(),
    ))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrNumber {
    Text(String),
    Number(u64),
}

fn text_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<TextOrNumber>::deserialize(d)?.map(|v| match v {
        TextOrNumber::Text(s) => s,
        TextOrNumber::Number(n) => n.to_string(),
    }))
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Parses an Iru timestamp: RFC 3339 (`2025-06-01T08:00:00.060000Z`), or the same without
/// an offset, read as UTC. Anything else is `None` (a missing `last_seen` only weakens the
/// choice among duplicate serials, M6; it does not fail a look-up).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

impl Device {
    /// The device as an M1 record: user id and name from the embedded user (none for `""`),
    /// `last_seen` from `last_check_in`.
    pub fn record(&self) -> MdmDeviceRecord {
        let user = self.user.as_ref();
        MdmDeviceRecord {
            mdm_device_id: self.device_id.as_str().into(),
            serial_number: self
                .serial_number
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_owned(),
            device_name: non_blank(&self.device_name),
            user_id: user.and_then(|u| non_blank(&u.id)).map(MdmUserId::new),
            user_name: user.and_then(|u| non_blank(&u.name)),
            last_seen: self.last_check_in.as_deref().and_then(parse_timestamp),
        }
    }
}
