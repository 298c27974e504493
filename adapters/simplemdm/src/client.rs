//! [`SimpleMdmClient`]: the core's `MdmClient` port over the SimpleMDM API.

use crate::config::{AUTO_PER_SERIAL_MAX, LookupStrategy, SimpleMdmConfig};
use crate::wire::{Account, AssignmentGroup, Device, ListPage, Single};
use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt, TryStreamExt};
use mdmsync_core::{
    Capability, CredentialCheck, ErrorKind, GroupKind, MdmClient, MdmDeviceId, MdmDeviceRecord,
    MdmError, MdmGroup, Provider, Snapshot,
};
use mdmsync_http::{Auth, Deadline, HasMorePage, HttpClient};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

const P: Provider = Provider::SimpleMdm;

/// `limit` of every list request: the documented maximum. Always sent: the default is 10.
pub const PAGE_SIZE: u32 = 100;

/// A SimpleMDM account as an [`MdmClient`]: assignment groups are the device groups, devices
/// are matched by their integer id in both the snapshot and look-ups (G3).
///
/// Keep one client per account for the process's lifetime: it holds the connection pool and
/// the request budget, and learns the fleet size to choose look-up strategies.
///
/// ```no_run
/// # async fn demo(credentials: mdmsync_core::Credentials) -> Result<(), mdmsync_core::MdmError> {
/// use mdmsync_core::MdmClient;
/// use mdmsync_simplemdm::{SimpleMdmClient, SimpleMdmConfig};
///
/// let client = SimpleMdmClient::new(SimpleMdmConfig::from_credentials(&credentials, None)?)?;
/// let check = client.validate_credentials().await?;
/// let snapshot = client.fetch_snapshot().await?;
/// # let _ = (check, snapshot); Ok(()) }
/// ```
#[derive(Debug)]
pub struct SimpleMdmClient {
    http: HttpClient,
    auth: Auth,
    base: Url,
    console: Option<Url>,
    lookup: LookupStrategy,
    device_groups: bool,
    timeout: Duration,
    /// Devices in the account as of the last sweep, plus one (0: no sweep yet).
    fleet: AtomicU64,
}

impl SimpleMdmClient {
    /// Builds the client: checks the configuration (URL, CA certificates, settings) without
    /// any network call. Errors are E1 kinds (`NotFound` for a URL, `SslError` for a CA).
    pub fn new(config: SimpleMdmConfig) -> Result<Self, MdmError> {
        mdmsync_http::check_url(&config.base_url).map_err(|e| e.into_mdm_error(P))?;
        let http = HttpClient::new(P, config.http).map_err(|e| e.into_mdm_error(P))?;
        Ok(Self {
            http,
            auth: Auth::basic_key(config.api_key),
            base: config.base_url,
            console: config.console_url,
            lookup: config.lookup,
            device_groups: config.include_device_group_members,
            timeout: config.operation_timeout,
            fleet: AtomicU64::new(0),
        })
    }

    /// The API base URL requests go to.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The number of devices the last sweep saw, if one ran.
    pub fn known_fleet_size(&self) -> Option<u64> {
        self.fleet.load(Ordering::Relaxed).checked_sub(1)
    }

    fn scoped(&self) -> HttpClient {
        self.http.with_deadline(Deadline::after(self.timeout))
    }

    /// `base_url` + path segments, each percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// Every object of a list endpoint: `limit=100` always, `starting_after` = the last id,
    /// until `has_more` is false (P2).
    async fn list_all<T, F>(
        &self,
        http: &HttpClient,
        op: &str,
        path: &str,
        filter: &[(&str, &str)],
        id: F,
    ) -> Result<Vec<T>, MdmError>
    where
        T: DeserializeOwned + Send,
        F: FnMut(&T) -> u64,
    {
        let url = self.url(&[path]);
        let (url, auth) = (&url, &self.auth);
        let limit = PAGE_SIZE.to_string();
        let limit = limit.as_str();
        http.pager(op)
            .starting_after(
                |after: Option<u64>| async move {
                    let after = after.map(|a| a.to_string());
                    let mut req = http.get(op, url).query(filter).query(&[("limit", limit)]);
                    if let Some(after) = &after {
                        req = req.query(&[("starting_after", after.as_str())]);
                    }
                    let page: ListPage<T> = req.auth(auth).send_json().await?;
                    Ok(HasMorePage {
                        items: page.data,
                        has_more: page.has_more,
                    })
                },
                id,
            )
            .await
    }

    /// All devices; remembers the fleet size for look-up planning.
    async fn sweep(&self, http: &HttpClient) -> Result<Vec<Device>, MdmError> {
        let devices = self
            .list_all(http, "list devices", "devices", &[], |d: &Device| d.id)
            .await?;
        self.fleet
            .store(devices.len() as u64 + 1, Ordering::Relaxed);
        Ok(devices)
    }

    /// A 403 with what to grant.
    fn forbidden_hint(e: MdmError, what: &str) -> MdmError {
        if e.kind() == Some(ErrorKind::Forbidden) {
            MdmError::new(
                ErrorKind::Forbidden,
                format!(
                    "{}; the API key may not {what}: give it read access in SimpleMDM under Settings › API (see docs/providers/simplemdm.md)",
                    e.message()
                ),
            )
        } else {
            e
        }
    }

    async fn probe<T: DeserializeOwned>(
        &self,
        http: &HttpClient,
        op: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, MdmError> {
        http.get(op, self.url(&[path]))
            .query(query)
            .auth(&self.auth)
            .send_json()
            .await
    }
}

/// Serial numbers compare trimmed and case-insensitively (Apple serials are upper case).
fn normalize_serial(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

#[async_trait]
impl MdmClient for SimpleMdmClient {
    fn provider(&self) -> Provider {
        P
    }

    /// C1: `GET /account` proves the key (401 `Unauthorized`; a 403 there only means the key
    /// may not read account details, which the sync does not need), `GET /assignment_groups`
    /// proves group read (403 `Forbidden`), `GET /devices` device read (403: metadata `No`).
    /// Force sync is not tried (it would act on a device): `Unknown`.
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        let http = self.scoped();
        match self
            .probe::<Single<Account>>(&http, "check the API key: read the account", "account", &[])
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == Some(ErrorKind::Forbidden) => {
                tracing::info!(
                    provider = P.slug(),
                    "the API key may not read the account; not needed"
                );
            }
            Err(e) => return Err(e),
        }
        self.probe::<ListPage<AssignmentGroup>>(
            &http,
            "check the API key: list assignment groups",
            "assignment_groups",
            &[("limit", "1")],
        )
        .await
        .map_err(|e| Self::forbidden_hint(e, "read assignment groups"))?;
        let metadata = match self
            .probe::<ListPage<Device>>(
                &http,
                "check the API key: list devices",
                "devices",
                &[("limit", "1")],
            )
            .await
        {
            Ok(_) => Capability::Yes,
            Err(e) if e.kind() == Some(ErrorKind::Forbidden) => Capability::No,
            Err(e) => return Err(e),
        };
        Ok(CredentialCheck {
            group_sync: Capability::Yes,
            metadata,
            force_sync: Capability::Unknown,
            server_version: None,
        })
    }

    /// P2: every assignment group (`limit=100`, `starting_after`, until `has_more` is false)
    /// with its embedded device members; members of attached legacy device groups are added
    /// from one device sweep when any group has them. Any failed page fails the whole snapshot.
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        let http = self.scoped();
        let groups = self
            .list_all(
                &http,
                "list assignment groups",
                "assignment_groups",
                &[],
                |g: &AssignmentGroup| g.id,
            )
            .await?;
        let legacy: BTreeSet<u64> = groups
            .iter()
            .filter_map(|g| g.relationships.device_groups.as_ref())
            .flat_map(|r| r.data.iter().map(|d| d.id))
            .collect();
        let mut indirect: HashMap<u64, Vec<u64>> = HashMap::new();
        if self.device_groups && !legacy.is_empty() {
            for d in self.sweep(&http).await? {
                if let Some(g) = d.device_group().filter(|g| legacy.contains(g)) {
                    indirect.entry(g).or_default().push(d.id);
                }
            }
        }
        let groups = groups
            .into_iter()
            .map(|g| {
                let direct = g.relationships.devices.data.iter().map(|d| d.id);
                let via = g
                    .relationships
                    .device_groups
                    .iter()
                    .flat_map(|r| r.data.iter())
                    .filter_map(|dg| indirect.get(&dg.id))
                    .flatten()
                    .copied();
                // A device both direct and via a device group is one member.
                let mut seen = HashSet::new();
                let members = direct
                    .chain(via)
                    .filter(|id| seen.insert(*id))
                    .map(MdmDeviceId::from)
                    .collect();
                MdmGroup {
                    id: g.id.into(),
                    name: g.attributes.name,
                    kind: GroupKind::Unknown,
                    members,
                }
            })
            .collect();
        Ok(Snapshot {
            provider: P,
            groups,
        })
    }

    /// M1, M6: every device whose serial matches (trimmed, case-insensitive), several if the
    /// serial repeats; an empty list for an unknown or blank serial. No user: the display name
    /// is the device name. Per serial (`search=`, matches re-checked here since search also
    /// matches names and substrings) or one sweep, by [`LookupStrategy`].
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError> {
        let mut out: BTreeMap<String, Vec<MdmDeviceRecord>> = BTreeMap::new();
        let mut wanted: BTreeMap<String, Vec<&String>> = BTreeMap::new();
        for s in serials {
            out.entry(s.clone()).or_default();
            let n = normalize_serial(s);
            if !n.is_empty() {
                wanted.entry(n).or_default().push(s);
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let sweep = match self.lookup {
            LookupStrategy::PerSerial => false,
            LookupStrategy::Sweep => true,
            LookupStrategy::Auto => match self.known_fleet_size() {
                None => wanted.len() > AUTO_PER_SERIAL_MAX,
                Some(n) => wanted.len() as u64 > n / u64::from(PAGE_SIZE) + 1,
            },
        };
        let http = self.scoped();
        let devices: Vec<Device> = if sweep {
            self.sweep(&http).await?
        } else {
            let parallel = http.config().max_concurrent_per_host.max(1);
            let http = &http;
            let searches: Vec<BoxFuture<'_, Result<Vec<Device>, MdmError>>> = wanted
                .keys()
                .map(|serial| {
                    async move {
                        self.list_all(
                            http,
                            "look up a device by serial",
                            "devices",
                            &[("search", serial.as_str())],
                            |d: &Device| d.id,
                        )
                        .await
                    }
                    .boxed()
                })
                .collect();
            stream::iter(searches)
                .buffer_unordered(parallel)
                .try_collect::<Vec<Vec<Device>>>()
                .await?
                .into_iter()
                .flatten()
                .collect()
        };
        let mut seen = HashSet::new();
        for d in devices {
            let Some(keys) = d
                .attributes
                .serial_number
                .as_deref()
                .and_then(|s| wanted.get(&normalize_serial(s)))
            else {
                continue;
            };
            if !seen.insert(d.id) {
                continue;
            }
            let record = d.record();
            for k in keys {
                if let Some(v) = out.get_mut(*k) {
                    v.push(record.clone());
                }
            }
        }
        Ok(out)
    }

    /// M4: `{console_url}/admin/devices/{id}` (`https://a.simplemdm.com/admin/devices/121`).
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        let id: u64 = device.as_str().parse().ok()?;
        let mut url = self.console.clone()?;
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .extend(["admin", "devices", &id.to_string()]);
        Some(url.into())
    }

    /// A1: `POST /devices/{id}/refresh` (202): SimpleMDM's inventory refresh, the closest to a
    /// check-in request. Not retried (a POST); a 429 ("frequency excessive") is `ServerError`.
    async fn force_sync(&self, device: &MdmDeviceId) -> Result<(), MdmError> {
        const OP: &str = "refresh a device";
        let Ok(id) = device.as_str().parse::<u64>() else {
            return Err(self.http.error(
                ErrorKind::NotFound,
                OP,
                format!("{device:?} is not a SimpleMDM device id (an integer)"),
            ));
        };
        let url = self.url(&["devices", &id.to_string(), "refresh"]);
        self.scoped().post_empty(OP, url, &self.auth).await
    }
}
