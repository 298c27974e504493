//! The Jamf Pro API shapes this adapter reads (`shared/providers.md` §1), and id normalisation.
//!
//! Jamf sends the same kind of id as a string of digits in the Jamf Pro API (`"12"`) and as an
//! integer in smart-group membership and the Classic API (`12`); [`JamfId`] accepts both and
//! normalises them to one decimal string, so group and member ids compare equal whatever
//! endpoint they came from (G3).

use chrono::{DateTime, Utc};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A Jamf id, normalised: an integer or a string of digits becomes its decimal form without
/// leading zeros; any other non-blank string is kept trimmed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct JamfId(pub(crate) String);

impl JamfId {
    /// Normalises a textual id; `None` if blank.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        if t.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = t.parse::<u64>() {
                return Some(JamfId(n.to_string()));
            }
        }
        Some(JamfId(t.to_owned()))
    }
}

impl fmt::Display for JamfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JamfId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl Visitor<'_> for IdVisitor {
            type Value = JamfId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Jamf id (an integer or a string of digits)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JamfId, E> {
                Ok(JamfId(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JamfId, E> {
                if v < 0 {
                    return Err(E::custom("a negative id"));
                }
                Ok(JamfId(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<JamfId, E> {
                JamfId::parse(v).ok_or_else(|| E::custom("an empty id"))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

/// `GET /api/v1/jamf-pro-version`.
#[derive(Debug, Deserialize)]
pub(crate) struct VersionInfo {
    /// `11.30.1-t1784555528405`.
    #[serde(default)]
    pub(crate) version: Option<String>,
}

/// The inventory API generation a server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InventoryApi {
    /// `/api/v3/computers-inventory` (deprecated in 11.30, still served).
    V3,
    /// `/api/v4/computers-inventory` (Jamf Pro 11.30 and later).
    V4,
}

impl InventoryApi {
    /// The collection path.
    pub(crate) fn path(self) -> &'static str {
        match self {
            InventoryApi::V3 => "api/v3/computers-inventory",
            InventoryApi::V4 => "api/v4/computers-inventory",
        }
    }

    /// Picks the generation from a Jamf Pro version string: v4 from 11.30 on, else v3. A
    /// version that does not parse gets v4 (a 404 then falls back to v3).
    pub(crate) fn for_version(version: &str) -> Self {
        let mut parts = version
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<u64>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(major), Some(minor)) if (major, minor) < (11, 30) => InventoryApi::V3,
            _ => InventoryApi::V4,
        }
    }
}

/// One item of `GET /api/v1/computer-groups` (unpaginated array).
#[derive(Debug, Deserialize)]
pub(crate) struct ComputerGroup {
    pub(crate) id: JamfId,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default, rename = "smartGroup")]
    pub(crate) smart_group: Option<bool>,
}

/// One page of `GET /api/v3|v4/computers-inventory`.
#[derive(Debug, Deserialize)]
pub(crate) struct InventoryPage {
    #[serde(rename = "totalCount")]
    pub(crate) total_count: u64,
    pub(crate) results: Vec<Computer>,
}

/// A computer of the inventory (list item or single object). Unrequested sections are `null`.
#[derive(Debug, Deserialize)]
pub(crate) struct Computer {
    pub(crate) id: JamfId,
    #[serde(default)]
    pub(crate) general: Option<General>,
    #[serde(default)]
    pub(crate) hardware: Option<Hardware>,
    #[serde(default, rename = "userAndLocation")]
    pub(crate) user_and_location: Option<UserAndLocation>,
    #[serde(default, rename = "groupMemberships")]
    pub(crate) group_memberships: Option<Vec<GroupMembership>>,
}

/// Section GENERAL (v3 and v4 field names).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct General {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default, rename = "managementId")]
    pub(crate) management_id: Option<String>,
    /// v3.
    #[serde(default, rename = "lastContactTime")]
    pub(crate) last_contact_time: Option<String>,
    /// v4 (renamed from `lastContactTime`).
    #[serde(default, rename = "lastContact")]
    pub(crate) last_contact: Option<String>,
    /// v4.
    #[serde(default, rename = "lastCheckIn")]
    pub(crate) last_check_in: Option<String>,
}

/// Section HARDWARE.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Hardware {
    #[serde(default, rename = "serialNumber")]
    pub(crate) serial_number: Option<String>,
}

/// Section USER_AND_LOCATION (`""` when no user is assigned).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct UserAndLocation {
    #[serde(default)]
    pub(crate) username: Option<String>,
    #[serde(default)]
    pub(crate) realname: Option<String>,
}

/// Section GROUP_MEMBERSHIPS: one group the computer is in.
#[derive(Debug, Deserialize)]
pub(crate) struct GroupMembership {
    #[serde(rename = "groupId")]
    pub(crate) group_id: JamfId,
    #[serde(default, rename = "groupName")]
    pub(crate) group_name: Option<String>,
    #[serde(default, rename = "smartGroup")]
    pub(crate) smart_group: Option<bool>,
}

/// `POST /api/v2/mdm/blank-push` body.
#[derive(Debug, Serialize)]
pub(crate) struct BlankPushRequest<'a> {
    #[serde(rename = "clientManagementIds")]
    pub(crate) client_management_ids: Vec<&'a str>,
}

/// `POST /api/v2/mdm/blank-push` answer: the management ids that failed.
#[derive(Debug, Deserialize)]
pub(crate) struct BlankPushResponse {
    #[serde(default, rename = "errorUuids")]
    pub(crate) error_uuids: Vec<String>,
}

/// A non-blank, trimmed string.
pub(crate) fn non_blank(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// An RFC 3339 timestamp, or `None` (absent, blank, unparseable).
pub(crate) fn timestamp(s: Option<&str>) -> Option<DateTime<Utc>> {
    let s = s?.trim();
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl General {
    /// When Jamf last heard from the computer: the latest of the contact and check-in times.
    pub(crate) fn last_seen(&self) -> Option<DateTime<Utc>> {
        [
            &self.last_contact,
            &self.last_check_in,
            &self.last_contact_time,
        ]
        .into_iter()
        .filter_map(|t| timestamp(t.as_deref()))
        .max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn g3_string_and_integer_ids_normalise_to_the_same_id() {
        let a: JamfId = serde_json::from_str("\"12\"").unwrap();
        let b: JamfId = serde_json::from_str("12").unwrap();
        let c: JamfId = serde_json::from_str("\" 012 \"").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.0, "12");
        assert!(serde_json::from_str::<JamfId>("\"  \"").is_err());
        assert!(serde_json::from_str::<JamfId>("-3").is_err());
        assert!(serde_json::from_str::<JamfId>("null").is_err());
    }

    #[test]
    fn inventory_generation_follows_the_server_version() {
        assert_eq!(
            InventoryApi::for_version("11.30.1-t1784555528405"),
            InventoryApi::V4
        );
        assert_eq!(InventoryApi::for_version("11.31.0"), InventoryApi::V4);
        assert_eq!(InventoryApi::for_version("12.0.0"), InventoryApi::V4);
        assert_eq!(
            InventoryApi::for_version("11.20.0-t1758133612"),
            InventoryApi::V3
        );
        assert_eq!(InventoryApi::for_version("10.49.0"), InventoryApi::V3);
        assert_eq!(InventoryApi::for_version("garbage"), InventoryApi::V4);
    }

    #[test]
    fn decodes_the_computer_group_list() {
        let groups: Vec<ComputerGroup> =
            serde_json::from_str(&fixture("computer_groups_v1.json")).unwrap();
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].id.0, "1");
        assert_eq!(groups[0].smart_group, Some(true));
        assert_eq!(groups[2].name.as_deref(), Some("Loaners"));
        assert_eq!(groups[2].id.0, "12", "an integer id is normalised");
    }

    #[test]
    fn decodes_a_v3_inventory_page_with_every_section() {
        let page: InventoryPage =
            serde_json::from_str(&fixture("computers_inventory_v3_page0.json")).unwrap();
        assert_eq!(page.total_count, 3);
        assert_eq!(page.results.len(), 2);
        let c = &page.results[0];
        assert_eq!(c.id.0, "7");
        let g = c.general.as_ref().unwrap();
        assert_eq!(g.name.as_deref(), Some("Ada's MacBook Pro"));
        assert_eq!(
            g.management_id.as_deref(),
            Some("a1f3c2d4-0b5e-4c1a-9f00-000000000007")
        );
        assert_eq!(
            g.last_seen().unwrap().to_rfc3339(),
            "2025-05-30T14:02:11.120+00:00"
        );
        assert_eq!(
            c.hardware.as_ref().unwrap().serial_number.as_deref(),
            Some("C02FIX000007")
        );
        let u = c.user_and_location.as_ref().unwrap();
        assert_eq!(u.username.as_deref(), Some("ada"));
        assert_eq!(u.realname.as_deref(), Some("Ada Lovelace"));
        let m = c.group_memberships.as_ref().unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].group_id.0, "12");
        assert_eq!(m[1].smart_group, Some(false));
        // Unassigned user: empty strings.
        let u = page.results[1].user_and_location.as_ref().unwrap();
        assert_eq!(non_blank(u.username.as_deref()), None);
        assert_eq!(
            page.results[1].group_memberships.as_deref().unwrap().len(),
            0
        );
    }

    #[test]
    fn decodes_a_v4_inventory_page_with_only_group_memberships() {
        let page: InventoryPage =
            serde_json::from_str(&fixture("computers_inventory_v4_page1.json")).unwrap();
        assert_eq!(page.total_count, 3);
        let c = &page.results[0];
        assert_eq!(c.id.0, "9");
        assert!(c.general.is_none() && c.hardware.is_none());
        assert_eq!(c.group_memberships.as_ref().unwrap()[0].group_id.0, "1");
    }

    #[test]
    fn v4_general_uses_last_contact_and_last_check_in() {
        let c: Computer = serde_json::from_str(&fixture("computer_detail_v4.json")).unwrap();
        let g = c.general.unwrap();
        assert_eq!(
            g.management_id.as_deref(),
            Some("a1f3c2d4-0b5e-4c1a-9f00-000000000009")
        );
        // The later of lastContact and lastCheckIn.
        assert_eq!(
            g.last_seen().unwrap().to_rfc3339(),
            "2025-06-01T07:45:00+00:00"
        );
    }

    #[test]
    fn decodes_version_and_blank_push_shapes() {
        let v: VersionInfo = serde_json::from_str(&fixture("jamf_pro_version.json")).unwrap();
        assert_eq!(v.version.as_deref(), Some("11.30.1-t1784555528405"));
        let r: BlankPushResponse =
            serde_json::from_str(&fixture("blank_push_response.json")).unwrap();
        assert_eq!(r.error_uuids, ["ffffffff-0000-4000-8000-000000000000"]);
        let body = serde_json::to_value(BlankPushRequest {
            client_management_ids: vec!["a1f3c2d4-0b5e-4c1a-9f00-000000000007"],
        })
        .unwrap();
        let expected: serde_json::Value =
            serde_json::from_str(&fixture("blank_push_request.json")).unwrap();
        assert_eq!(body, expected);
    }

    #[test]
    fn an_api_error_body_is_not_an_inventory_page() {
        assert!(serde_json::from_str::<InventoryPage>(&fixture("error_401.json")).is_err());
        assert!(serde_json::from_str::<Vec<ComputerGroup>>(&fixture("error_404.json")).is_err());
    }
}
