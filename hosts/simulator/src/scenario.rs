//! The scenario a simulator serves: devices, groups, accepted credentials and a few
//! provider-specific switches. Provider-neutral: each provider derives its id forms from the
//! neutral ids (see [`crate::ids`]).

use crate::ids;
use chrono::{DateTime, Duration, TimeZone, Utc};
use mdmsync_core::{GroupKind, MdmDeviceRecord, MdmGroup, Provider, Snapshot};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::Path;

/// Everything a simulator serves. Serialises to and from JSON and TOML (see the crate docs or
/// `mdmsim --help` for the format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The devices (computers, hosts, systems, managed devices).
    #[serde(default)]
    pub devices: Vec<Device>,
    /// The groups (computer groups, tags, assignment groups, labels, system groups, Entra groups).
    #[serde(default)]
    pub groups: Vec<Group>,
    /// The credentials the simulator accepts.
    #[serde(default)]
    pub credentials: SimCredentials,
    /// Lifetime of issued OAuth tokens (Jamf, Intune), seconds. Default: Jamf 599, Intune 3599.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_secs: Option<u64>,
    /// Provider-specific switches.
    #[serde(default)]
    pub options: ScenarioOptions,
}

/// One device. `id` is the neutral sim id (a positive integer) every provider derives its own
/// id forms from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Neutral sim id, ≥ 1, unique.
    pub id: u64,
    /// Serial number; `None` for serial-less (BYOD) devices. Serials may repeat (M6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial_number: Option<String>,
    /// The device name.
    pub device_name: String,
    /// The assigned user, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// When the MDM last heard from the device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    /// Intune only: not registered in Entra ID (kiosk / user-less ADE): `azureADDeviceId` is the
    /// zero GUID and the device never appears as an Entra group member.
    #[serde(default, skip_serializing_if = "is_false")]
    pub kiosk: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A device's assigned user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// Neutral user key (Jamf uses it as `username`; other providers derive ids from it).
    pub id: String,
    /// Full name.
    pub name: String,
    /// E-mail address.
    #[serde(default)]
    pub email: String,
}

/// One group.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// Neutral sim id, ≥ 1, unique.
    pub id: u64,
    /// The group's name.
    pub name: String,
    /// Smart (criteria-based, dynamic) rather than static.
    #[serde(default)]
    pub smart: bool,
    /// Member device sim ids.
    #[serde(default)]
    pub members: Vec<u64>,
}

/// The credentials a simulator accepts. Each provider uses the fields it needs:
/// Jamf `client_id` + `client_secret`; Intune `tenant_id` + `client_id` + `client_secret`;
/// Iru and Fleet `api_token`; SimpleMDM and JumpCloud `api_key` (+ `org_id` for JumpCloud
/// multi-tenant admins when set).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimCredentials {
    /// OAuth client id (Jamf, Intune).
    #[serde(default = "d_client_id")]
    pub client_id: String,
    /// OAuth client secret (Jamf, Intune).
    #[serde(default = "d_client_secret")]
    pub client_secret: String,
    /// Static bearer token (Iru, Fleet).
    #[serde(default = "d_api_token")]
    pub api_token: String,
    /// API key (SimpleMDM basic-auth user, JumpCloud `x-api-key`).
    #[serde(default = "d_api_key")]
    pub api_key: String,
    /// Entra tenant id (Intune).
    #[serde(default = "d_tenant")]
    pub tenant_id: String,
    /// JumpCloud: when set, `x-org-id` must be sent and equal this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

fn d_client_id() -> String {
    "mdmsim-client".into()
}
fn d_client_secret() -> String {
    "mdmsim-client-secret".into()
}
fn d_api_token() -> String {
    "mdmsim-api-token".into()
}
fn d_api_key() -> String {
    "mdmsim-api-key".into()
}
fn d_tenant() -> String {
    "7d0c5b3e-0000-4000-8000-00000000a11c".into()
}

impl Default for SimCredentials {
    fn default() -> Self {
        Self {
            client_id: d_client_id(),
            client_secret: d_client_secret(),
            api_token: d_api_token(),
            api_key: d_api_key(),
            tenant_id: d_tenant(),
            org_id: None,
        }
    }
}

impl fmt::Debug for SimCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("api_token", &"[redacted]")
            .field("api_key", &"[redacted]")
            .field("tenant_id", &self.tenant_id)
            .field("org_id", &self.org_id)
            .finish()
    }
}

/// Provider-specific switches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioOptions {
    /// Intune: the app has `Device.Read.All`. When false, group members come back with
    /// `deviceId: null` and `displayName: null` (HTTP 200), as Graph does.
    #[serde(default = "yes")]
    pub intune_device_read_all: bool,
    /// Intune: OData casts on `/members` and `/transitiveMembers` require
    /// `ConsistencyLevel: eventual` and `$count=true` (400 otherwise).
    #[serde(default = "yes")]
    pub intune_require_consistency_level: bool,
    /// Iru: page size of `GET /api/v1/tags` (DRF; the real value is unconfirmed).
    #[serde(default = "d_iru_tags")]
    pub iru_tag_page_size: usize,
    /// JumpCloud: every group's association list holds a dangling (null) association after its
    /// first member, which the server filters out, so a page can be short although more follow.
    #[serde(default)]
    pub jumpcloud_null_associations: bool,
    /// Jamf: the server has `/api/v4/computers-inventory` (Jamf Pro ≥ 11.30). When false the
    /// version is 11.20.0 and v4 is a 404.
    #[serde(default = "yes")]
    pub jamf_inventory_v4: bool,
}

fn yes() -> bool {
    true
}
fn d_iru_tags() -> usize {
    50
}

impl Default for ScenarioOptions {
    fn default() -> Self {
        Self {
            intune_device_read_all: true,
            intune_require_consistency_level: true,
            iru_tag_page_size: d_iru_tags(),
            jumpcloud_null_associations: false,
            jamf_inventory_v4: true,
        }
    }
}

/// A scenario that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Two devices or two groups share an id, or an id is 0.
    #[error("invalid scenario: {0}; fix the scenario file (ids are positive and unique)")]
    Invalid(String),
    /// A group lists a device that does not exist.
    #[error(
        "invalid scenario: group {group} lists device {device}, which is not in `devices`; add the device or drop the member"
    )]
    UnknownMember {
        /// The group.
        group: u64,
        /// The missing device.
        device: u64,
    },
    /// The file could not be read.
    #[error("cannot read scenario file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not a scenario.
    #[error("cannot parse scenario ({format}): {message}; see `mdmsim --help` for the format")]
    Parse {
        /// JSON or TOML.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
}

const FIRST: [&str; 16] = [
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Barbara",
    "Ken",
    "Margaret",
    "Dennis",
    "Frances",
    "Edsger",
    "Radia",
    "John",
    "Hedy",
    "Tim",
    "Katherine",
    "Donald",
];
const LAST: [&str; 16] = [
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Liskov",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Backus",
    "Lamarr",
    "Berners-Lee",
    "Johnson",
    "Knuth",
];
const TEAMS: [&str; 10] = [
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Design",
    "Support",
    "Legal",
    "Operations",
    "Research",
    "Kiosks",
];

impl Scenario {
    /// A small hand-made scenario (5 devices, 3 groups) used when no file is given.
    pub fn sample() -> Self {
        let t = |d: i64| Some(base_time() - Duration::hours(d));
        let user = |id: &str, name: &str| {
            Some(User {
                id: id.into(),
                name: name.into(),
                email: format!("{id}@example.com"),
            })
        };
        let dev = |id: u64, serial: &str, name: &str, u, seen| Device {
            id,
            serial_number: Some(serial.into()),
            device_name: name.into(),
            user: u,
            last_seen: seen,
            kiosk: false,
        };
        let mut devices = vec![
            dev(
                1,
                "C02SIM000001",
                "Ada's MacBook Pro",
                user("ada", "Ada Lovelace"),
                t(1),
            ),
            dev(
                2,
                "C02SIM000002",
                "Alan's MacBook Air",
                user("alan", "Alan Turing"),
                t(5),
            ),
            dev(
                3,
                "C02SIM000003",
                "Grace's iMac",
                user("grace", "Grace Hopper"),
                t(30),
            ),
            dev(4, "C02SIM000004", "Lab Mac mini", None, t(2)),
            dev(5, "C02SIM000005", "Lobby iPad", None, t(3)),
        ];
        devices[4].kiosk = true;
        Scenario {
            devices,
            groups: vec![
                Group {
                    id: 1,
                    name: "Engineering".into(),
                    smart: false,
                    members: vec![1, 2, 4],
                },
                Group {
                    id: 2,
                    name: "All Laptops".into(),
                    smart: true,
                    members: vec![1, 2],
                },
                Group {
                    id: 3,
                    name: "Kiosks".into(),
                    smart: false,
                    members: vec![5],
                },
            ],
            ..Default::default()
        }
    }

    /// A large deterministic fleet: `devices` devices (ids 1..=devices), `groups` groups (ids
    /// 1..=groups, every third smart) and about `memberships` memberships spread at random.
    /// About 85 % of devices have a user, 3 % are Intune kiosk devices; serials are unique,
    /// Apple-like, 12 characters. The same seed gives the same scenario.
    pub fn generate(seed: u64, devices: usize, groups: usize, memberships: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let base = base_time();
        let mut serials = HashSet::with_capacity(devices);
        const ALNUM: &[u8] = b"0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
        let users = (devices * 4 / 5).max(1);
        let mut out = Vec::with_capacity(devices);
        for id in 1..=devices as u64 {
            let serial = loop {
                let tail: String = (0..9)
                    .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
                    .collect();
                let s = format!("C02{tail}");
                if serials.insert(s.clone()) {
                    break s;
                }
            };
            let user = if rng.random_bool(0.85) {
                let k = rng.random_range(0..users);
                let first = FIRST[k % FIRST.len()];
                let last = LAST[(k / FIRST.len()) % LAST.len()];
                let uid = format!("user{k:06}");
                Some(User {
                    email: format!("{uid}@example.com"),
                    name: format!("{first} {last}"),
                    id: uid,
                })
            } else {
                None
            };
            let device_name = match &user {
                Some(u) => format!("{}'s Mac {id}", u.name.split(' ').next().unwrap_or("Mac")),
                None => format!("Mac-{id:06}"),
            };
            out.push(Device {
                id,
                serial_number: Some(serial),
                device_name,
                user,
                last_seen: Some(base - Duration::seconds(rng.random_range(0..30 * 86_400))),
                kiosk: rng.random_bool(0.03),
            });
        }
        let mut sets: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); groups];
        if groups > 0 && devices > 0 {
            let cap = memberships.min(groups.saturating_mul(devices));
            let mut n = 0;
            let mut attempts = 0usize;
            while n < cap && attempts < cap.saturating_mul(20) {
                attempts += 1;
                let g = rng.random_range(0..groups);
                let d = rng.random_range(1..=devices as u64);
                if sets[g].insert(d) {
                    n += 1;
                }
            }
        }
        let groups = sets
            .into_iter()
            .enumerate()
            .map(|(i, members)| {
                let id = i as u64 + 1;
                Group {
                    id,
                    name: format!("{} {id}", TEAMS[i % TEAMS.len()]),
                    smart: id % 3 == 0,
                    members: members.into_iter().collect(),
                }
            })
            .collect();
        Scenario {
            devices: out,
            groups,
            ..Default::default()
        }
    }

    /// Checks ids are positive and unique and every member exists.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut ids = HashSet::with_capacity(self.devices.len());
        for d in &self.devices {
            if d.id == 0 || !ids.insert(d.id) {
                return Err(ScenarioError::Invalid(format!(
                    "device id {} is 0 or repeated",
                    d.id
                )));
            }
        }
        let mut gids = HashSet::new();
        for g in &self.groups {
            if g.id == 0 || !gids.insert(g.id) {
                return Err(ScenarioError::Invalid(format!(
                    "group id {} is 0 or repeated",
                    g.id
                )));
            }
            if let Some(m) = g.members.iter().find(|m| !ids.contains(m)) {
                return Err(ScenarioError::UnknownMember {
                    group: g.id,
                    device: *m,
                });
            }
        }
        if self.options.iru_tag_page_size == 0 {
            return Err(ScenarioError::Invalid(
                "options.iru_tag_page_size must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// Parses JSON.
    pub fn from_json(text: &str) -> Result<Self, ScenarioError> {
        serde_json::from_str(text).map_err(|e| ScenarioError::Parse {
            format: "JSON",
            message: e.to_string(),
        })
    }

    /// Parses TOML.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        toml::from_str(text).map_err(|e| ScenarioError::Parse {
            format: "TOML",
            message: e.to_string(),
        })
    }

    /// Renders TOML.
    pub fn to_toml(&self) -> Result<String, ScenarioError> {
        toml::to_string(self).map_err(|e| ScenarioError::Parse {
            format: "TOML",
            message: e.to_string(),
        })
    }

    /// Reads a file: `.toml` as TOML, anything else as JSON. Validates it.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let s = if path.extension().is_some_and(|e| e == "toml") {
            Self::from_toml(&text)?
        } else {
            Self::from_json(&text)?
        };
        s.validate()?;
        Ok(s)
    }

    /// The token lifetime a provider issues (explicit, else Jamf 599 s, Intune 3599 s).
    pub fn token_lifetime(&self, provider: Provider) -> u64 {
        self.token_lifetime_secs.unwrap_or(match provider {
            Provider::Intune => 3599,
            _ => 599,
        })
    }

    /// Whether a device is listed as an Entra group member by the Intune simulator.
    fn visible_member(&self, provider: Provider, d: &Device) -> bool {
        !(provider == Provider::Intune && d.kiosk)
    }

    /// The snapshot a correct adapter for `provider` should produce from this scenario: every
    /// scenario group (builtin Fleet labels and Microsoft 365 groups excluded) with its members'
    /// [`ids::device_id`]s; Intune kiosk devices are not members. Kind: Jamf, Fleet,
    /// JumpCloud and Intune report smart/static; Iru and SimpleMDM `Unknown`.
    pub fn expected_snapshot(&self, provider: Provider) -> Snapshot {
        let by_id: std::collections::HashMap<u64, &Device> =
            self.devices.iter().map(|d| (d.id, d)).collect();
        let groups = self
            .groups
            .iter()
            .map(|g| {
                let members: BTreeSet<u64> = g
                    .members
                    .iter()
                    .copied()
                    .filter(|m| {
                        by_id
                            .get(m)
                            .is_some_and(|d| self.visible_member(provider, d))
                    })
                    .collect();
                MdmGroup {
                    id: ids::group_id(provider, g.id).into(),
                    name: g.name.clone(),
                    kind: match provider {
                        Provider::Iru | Provider::SimpleMdm => GroupKind::Unknown,
                        _ if g.smart => GroupKind::Smart,
                        _ => GroupKind::Static,
                    },
                    members: members
                        .into_iter()
                        .map(|m| ids::device_id(provider, m).into())
                        .collect(),
                }
            })
            .collect();
        Snapshot { provider, groups }
    }

    /// The records a correct adapter for `provider` should return for a serial (M1, M6):
    /// every device with that serial, with the provider's user id and user display name.
    pub fn expected_records(&self, provider: Provider, serial: &str) -> Vec<MdmDeviceRecord> {
        self.devices
            .iter()
            .filter(|d| d.serial_number.as_deref() == Some(serial))
            .map(|d| MdmDeviceRecord {
                mdm_device_id: ids::device_id(provider, d.id).into(),
                serial_number: serial.to_owned(),
                device_name: Some(d.device_name.clone()),
                user_id: d
                    .user
                    .as_ref()
                    .and_then(|u| ids::user_id(provider, &u.id))
                    .map(Into::into),
                user_name: match provider {
                    Provider::SimpleMdm => None,
                    _ => d.user.as_ref().map(|u| u.name.clone()),
                },
                last_seen: d.last_seen,
            })
            .collect()
    }
}

/// The fixed "now" generated scenarios count back from, so they are reproducible.
fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 2, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_is_deterministic_and_valid() {
        let a = Scenario::generate(7, 300, 20, 900);
        let b = Scenario::generate(7, 300, 20, 900);
        assert_eq!(a, b);
        a.validate().unwrap();
        let total: usize = a.groups.iter().map(|g| g.members.len()).sum();
        assert_eq!(total, 900);
        assert_ne!(a, Scenario::generate(8, 300, 20, 900));
    }

    #[test]
    fn scenario_round_trips_through_toml_and_json() {
        let s = Scenario::sample();
        let t = s.to_toml().unwrap();
        assert_eq!(Scenario::from_toml(&t).unwrap(), s);
        let j = serde_json::to_string(&s).unwrap();
        assert_eq!(Scenario::from_json(&j).unwrap(), s);
        let minimal = Scenario::from_json(r#"{"devices":[{"id":1,"device_name":"x"}]}"#).unwrap();
        assert_eq!(minimal.credentials, SimCredentials::default());
    }

    #[test]
    fn validation_rejects_unknown_members_and_repeated_ids() {
        let mut s = Scenario::sample();
        s.groups[0].members.push(99);
        assert!(matches!(
            s.validate(),
            Err(ScenarioError::UnknownMember { device: 99, .. })
        ));
        let mut s = Scenario::sample();
        s.devices[1].id = 1;
        assert!(s.validate().is_err());
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let d = format!("{:?}", SimCredentials::default());
        assert!(!d.contains("mdmsim-client-secret"));
        assert!(!d.contains("mdmsim-api-key"));
    }
}
