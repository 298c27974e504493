//! The JSON shapes of the SimpleMDM API this adapter reads (`shared/providers.md` §3), and
//! their mapping to core types. Public so the decoding can be tested against fixtures.
//!
//! Every list is `{"data": [...], "has_more": bool}`; objects are JSON:API-like
//! `{"type", "id", "attributes", "relationships"}`. Group members are embedded in the group
//! (`relationships.devices.data`); SimpleMDM has no assigned-user concept.

use chrono::{DateTime, Utc};
use mdmsync_core::MdmDeviceRecord;
use serde::{Deserialize, Serialize};

/// One page of a list endpoint (`GET /assignment_groups`, `GET /devices`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListPage<T> {
    /// The page's objects.
    pub data: Vec<T>,
    /// Whether more objects follow (ask again with `starting_after` = the last id).
    pub has_more: bool,
}

/// A single-object answer (`GET /account`, `GET /devices/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Single<T> {
    /// The object.
    pub data: T,
}

/// `GET /account`: only its presence is checked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The account's attributes.
    #[serde(default)]
    pub attributes: AccountAttributes,
}

/// The account attributes read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountAttributes {
    /// The account name.
    #[serde(default)]
    pub name: Option<String>,
}

/// An assignment group: SimpleMDM's device group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentGroup {
    /// The group id (an integer).
    pub id: u64,
    /// Its attributes.
    pub attributes: GroupAttributes,
    /// Apps, legacy device groups and devices attached to it.
    pub relationships: GroupRelationships,
}

/// The assignment group attributes read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupAttributes {
    /// The group name.
    pub name: String,
}

/// The relationships of an assignment group that carry members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRelationships {
    /// Direct device members. Required: without it membership is unknown, not empty.
    pub devices: ToMany,
    /// Legacy device groups whose devices are indirect members.
    #[serde(default)]
    pub device_groups: Option<ToMany>,
}

/// A to-many relationship: the whole list, not paginated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToMany {
    /// The related objects.
    pub data: Vec<ResourceRef>,
}

/// A to-one relationship.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToOne {
    /// The related object, if any.
    #[serde(default)]
    pub data: Option<ResourceRef>,
}

/// A reference to another object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRef {
    /// `device`, `device_group`, `app`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Its id.
    pub id: u64,
}

/// A device (`GET /devices`, `GET /devices/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The device id (an integer): the member id of groups, refresh and console links.
    pub id: u64,
    /// Its attributes.
    pub attributes: DeviceAttributes,
    /// Its relationships (the legacy device group).
    #[serde(default)]
    pub relationships: Option<DeviceRelationships>,
}

/// The device attributes read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAttributes {
    /// The name given in SimpleMDM (what its console shows).
    #[serde(default)]
    pub name: Option<String>,
    /// The name the device reports.
    #[serde(default)]
    pub device_name: Option<String>,
    /// The serial number (absent before enrollment completes).
    #[serde(default)]
    pub serial_number: Option<String>,
    /// When the device was last seen, RFC 3339.
    #[serde(default)]
    pub last_seen_at: Option<String>,
}

/// The device relationships read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRelationships {
    /// The legacy device group the device belongs to.
    #[serde(default)]
    pub device_group: Option<ToOne>,
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Parses a SimpleMDM timestamp (RFC 3339, e.g. `2025-06-01T08:00:00.000-07:00`). Anything
/// else is `None`: a missing `last_seen` only weakens the choice among duplicate serials (M6).
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc))
        .ok()
}

impl Device {
    /// The legacy device group id, if any.
    pub fn device_group(&self) -> Option<u64> {
        self.relationships
            .as_ref()?
            .device_group
            .as_ref()?
            .data
            .as_ref()
            .map(|r| r.id)
    }

    /// The device as an M1 record. SimpleMDM has no assigned user, so the display name is the
    /// device name: the SimpleMDM `name`, else the name the device reports.
    pub fn record(&self) -> MdmDeviceRecord {
        let a = &self.attributes;
        MdmDeviceRecord {
            mdm_device_id: self.id.into(),
            serial_number: a
                .serial_number
                .as_deref()
                .map(str::trim)
                .unwrap_or_default()
                .to_owned(),
            device_name: non_blank(&a.name).or_else(|| non_blank(&a.device_name)),
            user_id: None,
            user_name: None,
            last_seen: a.last_seen_at.as_deref().and_then(parse_timestamp),
        }
    }
}
