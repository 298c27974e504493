//! JumpCloud's JSON shapes (providers.md §5) and their mapping onto the core's types. v2 names
//! objects by `id`, v1 by `_id`. Unknown fields are ignored; a missing id fails decoding
//! (`ServerError`, E1).

use chrono::{DateTime, Utc};
use mdmsync_core::{GroupKind, MdmDeviceRecord, MdmUserId};
use serde::Deserialize;

/// One system group (`GET /api/v2/systemgroups`, a bare array of these).
#[derive(Debug, Deserialize)]
pub(crate) struct SystemGroup {
    pub id: String,
    pub name: String,
    #[serde(default, rename = "membershipMethod")]
    pub membership_method: Option<String>,
}

impl SystemGroup {
    /// `DYNAMIC_*` groups are computed by JumpCloud (smart); `STATIC` and the legacy `NOTSET`
    /// are kept by hand.
    pub fn kind(&self) -> GroupKind {
        match self.membership_method.as_deref() {
            Some(m) if m.starts_with("DYNAMIC") => GroupKind::Smart,
            Some("STATIC" | "NOTSET") => GroupKind::Static,
            _ => GroupKind::Unknown,
        }
    }
}

/// One resolved member (`GET /api/v2/systemgroups/{id}/membership`, a bare array).
#[derive(Debug, Deserialize)]
pub(crate) struct Member {
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Member {
    /// The membership of a system group lists systems; anything else is not a device.
    pub fn is_system(&self) -> bool {
        self.kind.as_deref().is_none_or(|k| k == "system")
    }
}

/// `GET /api/systems` (v1): an envelope with the total.
#[derive(Debug, Deserialize)]
pub(crate) struct SystemsPage {
    #[serde(rename = "totalCount")]
    pub total_count: u64,
    pub results: Vec<System>,
}

/// A system (v1 `JcSystem`).
#[derive(Debug, Deserialize)]
pub(crate) struct System {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default, rename = "displayName")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default, rename = "serialNumber")]
    pub serial_number: Option<String>,
    #[serde(default, rename = "lastContact")]
    pub last_contact: Option<String>,
    #[serde(default, rename = "primarySystemUser")]
    pub primary_system_user: Option<PrimaryUser>,
}

/// `primarySystemUser`.
#[derive(Debug, Deserialize)]
pub(crate) struct PrimaryUser {
    #[serde(default)]
    pub id: Option<String>,
}

/// `GET /api/systemusers/{id}` (v1).
#[derive(Debug, Deserialize)]
pub(crate) struct SystemUser {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default)]
    pub displayname: Option<String>,
    #[serde(default)]
    pub firstname: Option<String>,
    #[serde(default)]
    pub lastname: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl SystemUser {
    /// The user's name: `displayname`, else first and last name, else the username.
    pub fn name(&self) -> Option<String> {
        let full = [non_blank(&self.firstname), non_blank(&self.lastname)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        non_blank(&self.displayname)
            .or_else(|| Some(full).filter(|f| !f.is_empty()))
            .or_else(|| non_blank(&self.username))
    }
}

impl System {
    /// The serial, if JumpCloud has one.
    pub fn serial(&self) -> Option<String> {
        non_blank(&self.serial_number)
    }

    /// The primary user's id, if one is set.
    pub fn primary_user(&self) -> Option<String> {
        self.primary_system_user
            .as_ref()
            .and_then(|u| non_blank(&u.id))
    }

    /// M1: this system's record; `user` is its primary user, if found.
    pub fn to_record(&self, serial: String, user: Option<&SystemUser>) -> MdmDeviceRecord {
        let user_id = self.primary_user();
        MdmDeviceRecord {
            mdm_device_id: self.id.clone().into(),
            serial_number: serial,
            device_name: non_blank(&self.display_name).or_else(|| non_blank(&self.hostname)),
            user_name: user.and_then(SystemUser::name),
            user_id: user_id.map(MdmUserId::new),
            last_seen: non_blank(&self.last_contact)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn fixture<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn system_groups_pages_decode_and_kinds_map() {
        let p0: Vec<SystemGroup> = fixture(include_str!(
            "../tests/fixtures/systemgroups_skip0_limit2.json"
        ));
        let p1: Vec<SystemGroup> = fixture(include_str!(
            "../tests/fixtures/systemgroups_skip2_limit2.json"
        ));
        let got: Vec<(&str, &str, GroupKind)> = p0
            .iter()
            .chain(&p1)
            .map(|g| (g.id.as_str(), g.name.as_str(), g.kind()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "64b7f0c1a2b3c4d5e6f70001",
                    "Engineering Macs",
                    GroupKind::Static
                ),
                ("64b7f0c1a2b3c4d5e6f70002", "All macOS", GroupKind::Smart),
                ("64b7f0c1a2b3c4d5e6f70003", "Legacy", GroupKind::Static),
            ]
        );
    }

    #[test]
    fn p2_membership_pages_are_v2_ids_and_a_short_page_is_not_the_end() {
        let p0: Vec<Member> = fixture(include_str!(
            "../tests/fixtures/systemgroup_membership_skip0_limit2.json"
        ));
        let p1: Vec<Member> = fixture(include_str!(
            "../tests/fixtures/systemgroup_membership_skip2_limit2.json"
        ));
        let p2: Vec<Member> = fixture(include_str!(
            "../tests/fixtures/systemgroup_membership_skip4_limit2.json"
        ));
        // Page 0 is short (a null association was dropped) although page 1 follows.
        assert_eq!(p0.len(), 1);
        assert_eq!(p1.len(), 2);
        assert!(p2.is_empty());
        let ids: Vec<&str> = p0.iter().chain(&p1).map(|m| m.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "5d2e1f00a1b2c3d4e5f60001",
                "5d2e1f00a1b2c3d4e5f60002",
                "5d2e1f00a1b2c3d4e5f60003"
            ]
        );
        assert!(p0.iter().chain(&p1).all(Member::is_system));
    }

    #[test]
    fn m1_v1_system_uses_underscore_id_and_the_primary_user() {
        let page: SystemsPage = fixture(include_str!("../tests/fixtures/systems_by_serial.json"));
        assert_eq!(page.total_count, 2);
        let user: SystemUser = fixture(include_str!("../tests/fixtures/systemuser_detail.json"));
        let r = page.results[0].to_record("C02JC0000001".into(), Some(&user));
        assert_eq!(r.mdm_device_id.as_str(), "5d2e1f00a1b2c3d4e5f60001");
        assert_eq!(r.device_name.as_deref(), Some("Ada's MacBook Pro"));
        assert_eq!(
            r.user_id.as_ref().map(MdmUserId::as_str),
            Some("5e9a7b00c1d2e3f4a5b60011")
        );
        assert_eq!(r.user_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            r.last_seen,
            Some(Utc.with_ymd_and_hms(2025, 5, 30, 12, 0, 5).unwrap())
        );
        // The second record has no primary user: the display name is the device.
        let r = page.results[1].to_record("C02JC0000001".into(), None);
        assert_eq!(r.user_id, None);
        assert_eq!(r.display_name().as_deref(), Some("old-macbook.local"));
    }

    #[test]
    fn user_name_falls_back_to_first_last_then_username() {
        let mut u: SystemUser = fixture(include_str!("../tests/fixtures/systemuser_detail.json"));
        u.displayname = Some(" ".into());
        assert_eq!(u.name().as_deref(), Some("Ada Lovelace"));
        u.firstname = None;
        u.lastname = None;
        assert_eq!(u.name().as_deref(), Some("ada.lovelace"));
    }

    #[test]
    fn p3_error_body_yields_the_server_message() {
        let said = mdmsync_http::summarize_body(include_bytes!("../tests/fixtures/error_401.json"));
        assert_eq!(said.as_deref(), Some("Unauthorized"));
    }

    #[test]
    fn e1_a_v1_system_without_underscore_id_does_not_decode() {
        let v2_shape = r#"{"totalCount":1,"results":[{"id":"5d2e1f00a1b2c3d4e5f60001"}]}"#;
        assert!(serde_json::from_str::<SystemsPage>(v2_shape).is_err());
    }
}
