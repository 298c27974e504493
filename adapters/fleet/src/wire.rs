//! Fleet's JSON shapes (providers.md §4) and their mapping onto the core's types. Only the
//! fields the adapter reads are declared; unknown fields are ignored, a missing required field
//! (a label or host without `id`) fails decoding (`ServerError`, E1).

use chrono::{DateTime, Utc};
use mdmsync_core::{GroupKind, MdmDeviceRecord, MdmUserId};
use serde::Deserialize;

/// `GET /api/v1/fleet/me`.
#[derive(Debug, Deserialize)]
pub(crate) struct MeResponse {
    pub user: Me,
}

/// The API user.
#[derive(Debug, Deserialize)]
pub(crate) struct Me {
    #[serde(default)]
    pub global_role: Option<String>,
    #[serde(default)]
    pub teams: Option<Vec<serde::de::IgnoredAny>>,
}

/// `GET /api/v1/fleet/labels`.
#[derive(Debug, Deserialize)]
pub(crate) struct LabelsResponse {
    pub labels: Vec<Label>,
}

/// One label.
#[derive(Debug, Deserialize)]
pub(crate) struct Label {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub label_type: Option<String>,
    #[serde(default)]
    pub label_membership_type: Option<String>,
    #[serde(default)]
    pub host_count: Option<u64>,
}

impl Label {
    /// Builtin labels ("All Hosts", "macOS", …) are Fleet's own and are not synced.
    pub fn is_builtin(&self) -> bool {
        self.label_type.as_deref() == Some("builtin")
    }

    /// `dynamic` (query) and `host_vitals` (criteria) labels are computed by Fleet; `manual`
    /// labels are static host lists.
    pub fn kind(&self) -> GroupKind {
        match self.label_membership_type.as_deref() {
            Some("dynamic" | "host_vitals") => GroupKind::Smart,
            Some("manual") => GroupKind::Static,
            _ => GroupKind::Unknown,
        }
    }
}

/// `GET /api/v1/fleet/labels/{id}/hosts` and `GET /api/v1/fleet/hosts`.
#[derive(Debug, Deserialize)]
pub(crate) struct HostsResponse {
    pub hosts: Vec<Host>,
}

/// A host as list responses show it.
#[derive(Debug, Deserialize)]
pub(crate) struct Host {
    pub id: u64,
    #[serde(default)]
    pub hardware_serial: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub computer_name: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub seen_time: Option<String>,
}

/// `GET /api/v1/fleet/hosts/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct HostDetailResponse {
    pub host: HostDetail,
}

/// A host's detail: the list fields plus `end_users` (only here, providers.md §4.4).
#[derive(Debug, Deserialize)]
pub(crate) struct HostDetail {
    #[serde(flatten)]
    pub host: Host,
    #[serde(default)]
    pub end_users: Option<Vec<EndUser>>,
}

/// An IdP user Fleet maps to the host.
#[derive(Debug, Deserialize)]
pub(crate) struct EndUser {
    #[serde(default)]
    pub idp_id: Option<String>,
    #[serde(default)]
    pub idp_full_name: Option<String>,
    #[serde(default)]
    pub idp_username: Option<String>,
}

fn non_blank(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

impl Host {
    /// The serial, if Fleet has one.
    pub fn serial(&self) -> Option<String> {
        non_blank(&self.hardware_serial)
    }

    /// The device's name: `display_name`, else `computer_name`, else `hostname`.
    pub fn device_name(&self) -> Option<String> {
        non_blank(&self.display_name)
            .or_else(|| non_blank(&self.computer_name))
            .or_else(|| non_blank(&self.hostname))
    }

    /// `seen_time`, when it is an RFC 3339 time (an unparsable one is treated as unknown).
    pub fn last_seen(&self) -> Option<DateTime<Utc>> {
        let s = non_blank(&self.seen_time)?;
        DateTime::parse_from_rfc3339(&s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

impl HostDetail {
    /// M1: the record for this host. The user is `end_users[0]` (`idp_id`, and `idp_full_name`
    /// or, when blank, `idp_username`). `serial` is the serial as Fleet spells it.
    pub fn into_record(self, serial: String) -> MdmDeviceRecord {
        let user = self.end_users.unwrap_or_default().into_iter().next();
        let (user_id, user_name) = match user {
            Some(u) => (
                non_blank(&u.idp_id).map(MdmUserId::new),
                non_blank(&u.idp_full_name).or_else(|| non_blank(&u.idp_username)),
            ),
            None => (None, None),
        };
        MdmDeviceRecord {
            mdm_device_id: self.host.id.into(),
            serial_number: serial,
            device_name: self.host.device_name(),
            user_id,
            user_name,
            last_seen: self.host.last_seen(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const LABELS: &str = include_str!("../tests/fixtures/labels.json");
    const HOSTS_PAGE0: &str = include_str!("../tests/fixtures/label_hosts_page0_perpage2.json");
    const HOSTS_PAGE1: &str = include_str!("../tests/fixtures/label_hosts_page1_perpage2.json");
    const HOST_DETAIL: &str = include_str!("../tests/fixtures/host_detail.json");
    const HOST_DETAIL_NO_USER: &str = include_str!("../tests/fixtures/host_detail_no_user.json");
    const ME: &str = include_str!("../tests/fixtures/me.json");

    #[test]
    fn labels_fixture_decodes_and_builtin_labels_are_marked() {
        let r: LabelsResponse = serde_json::from_str(LABELS).unwrap();
        let synced: Vec<(&str, GroupKind)> = r
            .labels
            .iter()
            .filter(|l| !l.is_builtin())
            .map(|l| (l.name.as_str(), l.kind()))
            .collect();
        assert_eq!(
            synced,
            [
                ("Engineering laptops", GroupKind::Static),
                ("macOS 14 or later", GroupKind::Smart),
                ("Okta: Finance", GroupKind::Smart),
            ]
        );
        assert_eq!(r.labels.iter().filter(|l| l.is_builtin()).count(), 2);
        assert_eq!(r.labels[2].host_count, Some(3));
    }

    #[test]
    fn p2_label_host_pages_decode_with_integer_ids() {
        let p0: HostsResponse = serde_json::from_str(HOSTS_PAGE0).unwrap();
        let p1: HostsResponse = serde_json::from_str(HOSTS_PAGE1).unwrap();
        let ids: Vec<u64> = p0.hosts.iter().chain(&p1.hosts).map(|h| h.id).collect();
        assert_eq!(ids, [7, 12, 31]);
        assert_eq!(p1.hosts.len(), 1, "the short page is the last");
        assert_eq!(p0.hosts[0].serial().as_deref(), Some("C02FLT000007"));
    }

    #[test]
    fn m1_user_comes_from_end_users_of_the_detail() {
        let d: HostDetailResponse = serde_json::from_str(HOST_DETAIL).unwrap();
        let r = d.host.into_record("C02FLT000007".into());
        assert_eq!(r.mdm_device_id.as_str(), "7");
        assert_eq!(r.device_name.as_deref(), Some("Ada's MacBook Pro"));
        assert_eq!(
            r.user_id.as_ref().map(MdmUserId::as_str),
            Some("00u1a2b3c4d5e6f7g8h9")
        );
        assert_eq!(r.user_name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(r.display_name().as_deref(), Some("Ada Lovelace"));
        assert_eq!(
            r.last_seen,
            Some(Utc.with_ymd_and_hms(2025, 5, 30, 14, 2, 11).unwrap())
        );
    }

    #[test]
    fn m1_without_end_users_the_display_name_is_the_device() {
        let d: HostDetailResponse = serde_json::from_str(HOST_DETAIL_NO_USER).unwrap();
        let r = d.host.into_record("C02FLT000031".into());
        assert_eq!(r.user_id, None);
        assert_eq!(r.user_name, None);
        // display_name is blank: computer_name is next.
        assert_eq!(r.display_name().as_deref(), Some("Lab Mac mini"));
        assert_eq!(r.last_seen, None, "an unparsable seen_time is unknown");
    }

    #[test]
    fn me_fixture_decodes() {
        let me: MeResponse = serde_json::from_str(ME).unwrap();
        assert_eq!(me.user.global_role.as_deref(), Some("observer"));
        assert_eq!(me.user.teams.map(|t| t.len()), Some(0));
    }

    #[test]
    fn p3_error_bodies_yield_the_server_message() {
        let said = mdmsync_http::summarize_body(include_bytes!("../tests/fixtures/error_401.json"));
        assert!(said.unwrap().contains("Authentication required"));
        let said = mdmsync_http::summarize_body(include_bytes!("../tests/fixtures/error_429.json"));
        assert!(said.unwrap().contains("Too Many Requests"));
    }

    #[test]
    fn e1_a_host_without_id_does_not_decode() {
        let bad = r#"{"hosts":[{"hostname":"x"}]}"#;
        assert!(serde_json::from_str::<HostsResponse>(bad).is_err());
    }
}
