//! The Microsoft Graph shapes this adapter reads (`shared/providers.md` §6), and the join of
//! Entra group members to Intune managed devices (§6.3, §7.8).
//!
//! Three different ids meet here: an Entra group member's `id` (directory object id), its
//! `deviceId` (set at Entra registration) and the Intune `managedDevice.id`. The join is
//! `device.deviceId == managedDevice.azureADDeviceId`; the snapshot reports
//! `managedDevice.id`, the id look-ups return and `syncDevice` and the console link take (G3).

use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

/// The `azureADDeviceId` of devices not registered in Entra (kiosk, user-less ADE).
pub(crate) const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// One page of a Graph collection.
#[derive(Debug, Deserialize)]
pub(crate) struct Page<T> {
    pub(crate) value: Vec<T>,
    /// The next page's URL, to follow verbatim.
    #[serde(default, rename = "@odata.nextLink")]
    pub(crate) next_link: Option<String>,
}

/// A Graph error body: `{"error": {"code", "message", "innerError"}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphError {
    pub(crate) error: GraphErrorBody,
}

/// The inner error object.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphErrorBody {
    #[serde(default)]
    pub(crate) code: Option<String>,
}

/// An Entra group (`$select=id,displayName,groupTypes,securityEnabled,mailEnabled`).
#[derive(Debug, Deserialize)]
pub(crate) struct Group {
    pub(crate) id: String,
    #[serde(default, rename = "displayName")]
    pub(crate) display_name: Option<String>,
    #[serde(default, rename = "groupTypes")]
    pub(crate) group_types: Option<Vec<String>>,
    #[serde(default, rename = "securityEnabled")]
    pub(crate) security_enabled: Option<bool>,
}

impl Group {
    fn has_type(&self, t: &str) -> bool {
        self.group_types
            .as_deref()
            .unwrap_or_default()
            .iter()
            .any(|g| g.eq_ignore_ascii_case(t))
    }

    /// A security group: security-enabled and not a Microsoft 365 (`Unified`) group.
    pub(crate) fn is_security_group(&self) -> bool {
        self.security_enabled != Some(false) && !self.has_type("Unified")
    }

    /// Dynamic membership (a membership rule): the smart kind.
    pub(crate) fn is_dynamic(&self) -> bool {
        self.has_type("DynamicMembership")
    }
}

/// A group member cast to `microsoft.graph.device`. Without `Device.Read.All` Graph still
/// answers 200 but `deviceId` is `null` ("limited information").
#[derive(Debug, Deserialize)]
pub(crate) struct DirectoryDevice {
    /// The directory object id (not the join key).
    pub(crate) id: String,
    #[serde(default, rename = "deviceId")]
    pub(crate) device_id: Option<String>,
}

impl DirectoryDevice {
    /// The Entra device id, if Graph showed it.
    pub(crate) fn entra_device_id(&self) -> Option<String> {
        self.device_id
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_ascii_lowercase)
    }
}

/// An Intune managed device (the `$select`ed fields).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ManagedDevice {
    pub(crate) id: String,
    #[serde(default, rename = "azureADDeviceId")]
    pub(crate) azure_ad_device_id: Option<String>,
    #[serde(default, rename = "deviceName")]
    pub(crate) device_name: Option<String>,
    #[serde(default, rename = "userId")]
    pub(crate) user_id: Option<String>,
    #[serde(default, rename = "userDisplayName")]
    pub(crate) user_display_name: Option<String>,
    #[serde(default, rename = "serialNumber")]
    pub(crate) serial_number: Option<String>,
    #[serde(default, rename = "lastSyncDateTime")]
    pub(crate) last_sync: Option<String>,
}

/// A non-blank, trimmed string.
pub(crate) fn non_blank(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl ManagedDevice {
    /// `lastSyncDateTime`, unless absent or Graph's "never" (`0001-01-01T00:00:00Z`).
    pub(crate) fn last_seen(&self) -> Option<DateTime<Utc>> {
        let t = DateTime::parse_from_rfc3339(self.last_sync.as_deref()?.trim()).ok()?;
        (t.year() >= 1971).then(|| t.with_timezone(&Utc))
    }

    /// The Entra device id it joins on: lower case, `None` when blank or the zero GUID.
    pub(crate) fn join_key(&self) -> Option<String> {
        non_blank(self.azure_ad_device_id.as_deref())
            .map(|d| d.to_ascii_lowercase())
            .filter(|d| d != ZERO_GUID)
    }
}

/// Entra device id → the managed device id to report. Zero GUIDs and blanks are skipped;
/// several managed devices with one Entra id (re-enrolment, stale records) resolve to the one
/// synced most recently (ties: the larger id, so the choice is stable).
pub(crate) fn join_index(devices: &[ManagedDevice]) -> HashMap<String, String> {
    let mut best: HashMap<String, &ManagedDevice> = HashMap::with_capacity(devices.len());
    for d in devices {
        let Some(key) = d.join_key() else { continue };
        let newer = |old: &&ManagedDevice| (d.last_seen(), &d.id) > (old.last_seen(), &old.id);
        match best.get(&key) {
            Some(old) if !newer(old) => {}
            _ => {
                best.insert(key, d);
            }
        }
    }
    best.into_iter().map(|(k, d)| (k, d.id.clone())).collect()
}

/// A group's members as managed device ids: each member's `deviceId` looked up in `index`;
/// members without a managed device (Entra-only devices) are dropped and counted. The result
/// is sorted and free of repeats. Call only once every member has a `deviceId`.
pub(crate) fn join_members(
    members: &[DirectoryDevice],
    index: &HashMap<String, String>,
) -> (Vec<String>, usize) {
    let mut out = BTreeSet::new();
    let mut unmanaged = 0;
    for m in members {
        match m.entra_device_id().and_then(|d| index.get(&d)) {
            Some(id) => {
                out.insert(id.clone());
            }
            None => unmanaged += 1,
        }
    }
    (out.into_iter().collect(), unmanaged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn decodes_group_pages_and_tells_security_from_m365_and_dynamic() {
        let p1: Page<Group> = serde_json::from_str(&fixture("groups_page1.json")).unwrap();
        assert_eq!(p1.value.len(), 2);
        assert!(p1.next_link.as_deref().unwrap().contains("$skiptoken="));
        let p2: Page<Group> = serde_json::from_str(&fixture("groups_page2.json")).unwrap();
        assert_eq!(p2.next_link, None);
        let all: Vec<&Group> = p1.value.iter().chain(&p2.value).collect();
        let security: Vec<&str> = all
            .iter()
            .filter(|g| g.is_security_group())
            .map(|g| g.display_name.as_deref().unwrap())
            .collect();
        assert_eq!(security, ["Engineering Macs", "All Kiosks (dynamic)"]);
        assert!(!all[0].is_dynamic());
        assert!(all[1].is_dynamic());
        assert!(!all[2].is_security_group(), "Unified = Microsoft 365 group");
    }

    #[test]
    fn decodes_device_members_and_spots_limited_information() {
        let p: Page<DirectoryDevice> =
            serde_json::from_str(&fixture("group_members_devices_page1.json")).unwrap();
        assert_eq!(p.value.len(), 2);
        assert_eq!(
            p.value[0].entra_device_id().as_deref(),
            Some("4c6f3a1e-7b2d-4e1a-8c3b-00000000d001")
        );
        assert!(p.next_link.is_some());
        let limited: Page<DirectoryDevice> =
            serde_json::from_str(&fixture("group_members_limited_info_no_device_read.json"))
                .unwrap();
        assert!(limited.value.iter().all(|m| m.entra_device_id().is_none()));
        assert!(limited.value.iter().all(|m| !m.id.is_empty()));
    }

    #[test]
    fn g3_join_skips_the_zero_guid_and_picks_the_latest_duplicate() {
        let p: Page<ManagedDevice> =
            serde_json::from_str(&fixture("managed_devices_page1.json")).unwrap();
        assert_eq!(p.value.len(), 4);
        let kiosk = &p.value[2];
        assert_eq!(kiosk.join_key(), None, "zero GUID");
        assert_eq!(
            non_blank(kiosk.user_id.as_deref()),
            None,
            "no user: empty string"
        );
        let index = join_index(&p.value);
        assert_eq!(index.len(), 2);
        // Two managed devices share an Entra id: the one synced last wins.
        assert_eq!(
            index["4c6f3a1e-7b2d-4e1a-8c3b-00000000d002"],
            "a7e1c0de-0000-4000-8000-0000000000b2"
        );
        let members: Page<DirectoryDevice> =
            serde_json::from_str(&fixture("group_members_devices_page1.json")).unwrap();
        let (ids, unmanaged) = join_members(&members.value, &index);
        assert_eq!(
            ids,
            [
                "a7e1c0de-0000-4000-8000-0000000000a1",
                "a7e1c0de-0000-4000-8000-0000000000b2"
            ]
        );
        assert_eq!(unmanaged, 0);
        // The same device twice (stale duplicate Entra objects) counts once; an Entra-only
        // device is dropped and counted.
        let extra: Vec<DirectoryDevice> = serde_json::from_str(
            r#"[{"id":"x1","deviceId":"4C6F3A1E-7B2D-4E1A-8C3B-00000000D001"},
                {"id":"x2","deviceId":"4c6f3a1e-7b2d-4e1a-8c3b-00000000d001"},
                {"id":"x3","deviceId":"99999999-0000-4000-8000-000000000000"}]"#,
        )
        .unwrap();
        let (ids, unmanaged) = join_members(&extra, &index);
        assert_eq!(ids, ["a7e1c0de-0000-4000-8000-0000000000a1"]);
        assert_eq!(unmanaged, 1);
    }

    #[test]
    fn managed_device_metadata_fields_decode() {
        let d: ManagedDevice =
            serde_json::from_str(&fixture("managed_device_detail.json")).unwrap();
        assert_eq!(d.id, "a7e1c0de-0000-4000-8000-0000000000a1");
        assert_eq!(d.device_name.as_deref(), Some("Ada's MacBook Pro"));
        assert_eq!(d.user_display_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(d.serial_number.as_deref(), Some("C02FIX0000A1"));
        assert_eq!(
            d.last_seen().unwrap().to_rfc3339(),
            "2025-06-01T08:00:00+00:00"
        );
        let never: ManagedDevice =
            serde_json::from_str(r#"{"id":"x","lastSyncDateTime":"0001-01-01T00:00:00Z"}"#)
                .unwrap();
        assert_eq!(never.last_seen(), None);
    }

    #[test]
    fn decodes_graph_error_codes() {
        for (file, code) in [
            ("error_401.json", "InvalidAuthenticationToken"),
            ("error_403.json", "Authorization_RequestDenied"),
            ("error_429.json", "TooManyRequests"),
            (
                "error_expired_page_token.json",
                "Directory_ExpiredPageToken",
            ),
        ] {
            let e: GraphError = serde_json::from_str(&fixture(file)).unwrap();
            assert_eq!(e.error.code.as_deref(), Some(code), "{file}");
            assert!(serde_json::from_str::<Page<Group>>(&fixture(file)).is_err());
        }
    }
}
