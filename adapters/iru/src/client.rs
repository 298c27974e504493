//! [`IruClient`]: the core's `MdmClient` port over the Iru (Kandji) API.

use crate::config::{AUTO_PER_SERIAL_MAX, IruConfig, LookupStrategy, SnapshotStrategy};
use crate::wire::{Device, Tag, TagPage};
use async_trait::async_trait;
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, StreamExt, TryStreamExt};
use mdmsync_core::{
    Capability, CredentialCheck, ErrorKind, GroupKind, MdmClient, MdmDeviceId, MdmDeviceRecord,
    MdmError, MdmGroup, Provider, Snapshot,
};
use mdmsync_http::{Auth, Deadline, HttpClient, LinkPage, PageEnd};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use url::Url;

const P: Provider = Provider::Iru;

/// `limit` of every device listing: the documented hard maximum of `/api/v1/devices`.
pub const DEVICE_PAGE_SIZE: u32 = 300;

/// After this many consecutive sweeps whose name join was not exact, snapshots of this client
/// go per tag directly instead of paying for a sweep first.
const MAX_SWEEP_MISSES: u32 = 2;

/// An Iru (formerly Kandji) tenant as an [`MdmClient`]: tags are the device groups, devices
/// are matched by `device_id` (a UUID) in both the snapshot and look-ups (G3).
///
/// Keep one client per tenant for the process's lifetime: it holds the connection pool and
/// the P5 request budget (10,000 requests per hour), and learns the fleet size to choose
/// look-up strategies.
///
/// ```no_run
/// # async fn demo(credentials: mdmsync_core::Credentials) -> Result<(), mdmsync_core::MdmError> {
/// use mdmsync_core::MdmClient;
/// use mdmsync_iru::{IruClient, IruConfig};
///
/// let client = IruClient::new(IruConfig::from_credentials(&credentials, None)?)?;
/// let check = client.validate_credentials().await?;
/// let snapshot = client.fetch_snapshot().await?;
/// # let _ = (check, snapshot); Ok(()) }
/// ```
#[derive(Debug)]
pub struct IruClient {
    http: HttpClient,
    auth: Auth,
    api: Url,
    web: Option<Url>,
    snapshot: SnapshotStrategy,
    lookup: LookupStrategy,
    timeout: Duration,
    /// Devices in the tenant as of the last full sweep, plus one (0: no sweep yet).
    fleet: AtomicU64,
    /// Consecutive sweeps whose tag-name join failed.
    sweep_misses: AtomicU32,
}

impl IruClient {
    /// Builds the client: checks the configuration (URL, CA certificates, settings) without
    /// any network call. Errors are E1 kinds (`NotFound` for a URL, `SslError` for a CA).
    pub fn new(config: IruConfig) -> Result<Self, MdmError> {
        mdmsync_http::check_url(&config.api_url).map_err(|e| e.into_mdm_error(P))?;
        let http = HttpClient::new(P, config.http).map_err(|e| e.into_mdm_error(P))?;
        Ok(Self {
            http,
            auth: Auth::bearer(config.api_token),
            api: config.api_url,
            web: config.web_url,
            snapshot: config.snapshot,
            lookup: config.lookup,
            timeout: config.operation_timeout,
            fleet: AtomicU64::new(0),
            sweep_misses: AtomicU32::new(0),
        })
    }

    /// The API base URL requests go to.
    pub fn api_url(&self) -> &Url {
        &self.api
    }

    /// The number of devices the last full sweep saw, if one ran.
    pub fn known_fleet_size(&self) -> Option<u64> {
        self.fleet.load(Ordering::Relaxed).checked_sub(1)
    }

    /// The HTTP client scoped to one operation's time budget.
    fn scoped(&self) -> HttpClient {
        self.http.with_deadline(Deadline::after(self.timeout))
    }

    /// `api_url` + path segments, each percent-encoded (ids never change the path's shape).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn tags_url(&self) -> Url {
        let mut url = self.url(&["api", "v1", "tags"]);
        // Documented (and required by the converted spec): an empty search lists all.
        url.query_pairs_mut().append_pair("search", "");
        url
    }

    /// Every tag, following DRF `next` links verbatim until `null` (P2).
    async fn list_tags(&self, http: &HttpClient) -> Result<Vec<Tag>, MdmError> {
        const OP: &str = "list tags";
        let auth = &self.auth;
        http.pager(OP)
            .next_link(
                self.tags_url(),
                |url| async move {
                    let page: TagPage = http.get(OP, url).auth(auth).send_json().await?;
                    Ok(LinkPage {
                        items: page.results,
                        next: page.next,
                    })
                },
                |t: &Tag| t.id.clone(),
            )
            .await
    }

    /// Every device matching `filter`, `limit=300` + `offset`, until a short or empty page.
    async fn list_devices(
        &self,
        http: &HttpClient,
        op: &str,
        filter: &[(&str, &str)],
    ) -> Result<Vec<Device>, MdmError> {
        let url = self.url(&["api", "v1", "devices"]);
        let (url, auth) = (&url, &self.auth);
        let limit = DEVICE_PAGE_SIZE.to_string();
        let limit = limit.as_str();
        http.pager(op)
            .offset(
                DEVICE_PAGE_SIZE,
                PageEnd::ShortPage,
                |offset| async move {
                    let offset = offset.to_string();
                    http.get(op, url)
                        .query(filter)
                        .query(&[("limit", limit), ("offset", &offset)])
                        .auth(auth)
                        .send_json::<Vec<Device>>()
                        .await
                },
                |d: &Device| d.device_id.clone(),
            )
            .await
    }

    /// All devices; remembers the fleet size for look-up planning.
    async fn sweep(&self, http: &HttpClient, op: &str) -> Result<Vec<Device>, MdmError> {
        let devices = self.list_devices(http, op, &[]).await?;
        self.fleet
            .store(devices.len() as u64 + 1, Ordering::Relaxed);
        Ok(devices)
    }

    /// One tag's members by tag id.
    async fn tag_members(
        &self,
        http: &HttpClient,
        tag: &Tag,
    ) -> Result<Vec<MdmDeviceId>, MdmError> {
        let devices = self
            .list_devices(http, "list a tag's devices", &[("tag_id", tag.id.as_str())])
            .await?;
        Ok(devices
            .into_iter()
            .map(|d| MdmDeviceId::new(d.device_id))
            .collect())
    }

    /// Each tag's members, one listing per tag (a few at a time, within the host limit).
    async fn members_per_tag(
        &self,
        http: &HttpClient,
        tags: &[&Tag],
    ) -> Result<Vec<Vec<MdmDeviceId>>, MdmError> {
        let parallel = http.config().max_concurrent_per_host.max(1);
        // Boxed up front: a lazily mapped stream trips the `Send` bound of the async trait.
        let listings: Vec<BoxFuture<'_, Result<Vec<MdmDeviceId>, MdmError>>> = tags
            .iter()
            .map(|t| self.tag_members(http, t).boxed())
            .collect();
        stream::iter(listings)
            .buffered(parallel)
            .try_collect()
            .await
    }

    /// Each tag's members from one sweep of all devices, joined by tag name. `None` when the
    /// join is not exact (a name not in the tag list, devices without `tags`): the caller then
    /// lists per tag. Tags sharing a name are listed by id.
    async fn members_by_sweep(
        &self,
        http: &HttpClient,
        tags: &[Tag],
    ) -> Result<Option<Vec<Vec<MdmDeviceId>>>, MdmError> {
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, t) in tags.iter().enumerate() {
            by_name.entry(t.name.as_str()).or_default().push(i);
        }
        let devices = self.sweep(http, "list all devices").await?;
        let mut members: Vec<Vec<MdmDeviceId>> = vec![Vec::new(); tags.len()];
        for d in &devices {
            let Some(names) = &d.tags else {
                tracing::warn!(
                    provider = P.slug(),
                    "device listing carries no `tags` field; listing members per tag instead"
                );
                self.sweep_misses.store(MAX_SWEEP_MISSES, Ordering::Relaxed);
                return Ok(None);
            };
            let mut seen = HashSet::new();
            for name in names {
                if !seen.insert(name.as_str()) {
                    continue;
                }
                match by_name.get(name.as_str()).map(Vec::as_slice) {
                    Some([only]) => members[*only].push(MdmDeviceId::new(d.device_id.as_str())),
                    Some(_) => {} // a shared name: listed by id below
                    None => {
                        tracing::info!(
                            provider = P.slug(),
                            tag = %name,
                            "a device carries a tag name the tag list does not have (renamed or created during the sync?); listing members per tag instead"
                        );
                        self.sweep_misses.fetch_add(1, Ordering::Relaxed);
                        return Ok(None);
                    }
                }
            }
        }
        self.sweep_misses.store(0, Ordering::Relaxed);
        let shared: Vec<usize> = by_name
            .values()
            .filter(|ix| ix.len() > 1)
            .flatten()
            .copied()
            .collect();
        if !shared.is_empty() {
            let listed = self
                .members_per_tag(http, &shared.iter().map(|&i| &tags[i]).collect::<Vec<_>>())
                .await?;
            for (i, m) in shared.into_iter().zip(listed) {
                members[i] = m;
            }
        }
        Ok(Some(members))
    }

    fn forbidden_hint(e: MdmError, what: &str) -> MdmError {
        if e.kind() == Some(ErrorKind::Forbidden) {
            MdmError::new(
                ErrorKind::Forbidden,
                format!(
                    "{}; the API token may not {what}: grant it in Iru under Settings › Access › API Token (see docs/providers/iru.md)",
                    e.message()
                ),
            )
        } else {
            e
        }
    }
}

/// Serial numbers compare trimmed and case-insensitively (Apple serials are upper case).
fn normalize_serial(s: &str) -> String {
    s.trim().to_ascii_uppercase()
}

#[async_trait]
impl MdmClient for IruClient {
    fn provider(&self) -> Provider {
        P
    }

    /// C1: `GET /api/v1/tags?search=` (group read) and `GET /api/v1/devices?limit=1` (device
    /// read, needed for members and metadata). A 403 on either is `Forbidden` naming what is
    /// missing. Force sync is not tried (it would push to a device): `Unknown`.
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        let http = self.scoped();
        http.get("check the API token: list tags", self.tags_url())
            .auth(&self.auth)
            .send_json::<TagPage>()
            .await
            .map_err(|e| Self::forbidden_hint(e, "read tags"))?;
        http.get(
            "check the API token: list devices",
            self.url(&["api", "v1", "devices"]),
        )
        .query(&[("limit", "1")])
        .auth(&self.auth)
        .send_json::<Vec<Device>>()
        .await
        .map_err(|e| Self::forbidden_hint(e, "list devices"))?;
        Ok(CredentialCheck {
            group_sync: Capability::Yes,
            metadata: Capability::Yes,
            force_sync: Capability::Unknown,
            server_version: None,
        })
    }

    /// P2: every tag (DRF `next` links) and its members, by [`SnapshotStrategy`]; any failed
    /// page fails the whole snapshot.
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        let http = self.scoped();
        let tags = self.list_tags(&http).await?;
        if tags.is_empty() {
            // No tag, nothing to sweep for (G11 decides what an empty snapshot may do).
            return Ok(Snapshot::new(P));
        }
        let per_tag = self.snapshot == SnapshotStrategy::PerTag
            || self.sweep_misses.load(Ordering::Relaxed) >= MAX_SWEEP_MISSES;
        let members = if per_tag {
            None
        } else {
            self.members_by_sweep(&http, &tags).await?
        };
        let members = match members {
            Some(m) => m,
            None => {
                self.members_per_tag(&http, &tags.iter().collect::<Vec<_>>())
                    .await?
            }
        };
        Ok(Snapshot {
            provider: P,
            groups: tags
                .into_iter()
                .zip(members)
                .map(|(t, members)| MdmGroup {
                    id: t.id.into(),
                    name: t.name,
                    kind: GroupKind::Unknown,
                    members,
                })
                .collect(),
        })
    }

    /// M1, M6: every device whose serial matches (trimmed, case-insensitive), several if the
    /// serial repeats; an empty list for an unknown or blank serial. Per serial
    /// (`serial_number=` filter, matches re-checked here) or one sweep, by [`LookupStrategy`].
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
                Some(n) => wanted.len() as u64 > n / u64::from(DEVICE_PAGE_SIZE) + 1,
            },
        };
        let http = self.scoped();
        let devices: Vec<Device> = if sweep {
            self.sweep(&http, "list all devices").await?
        } else {
            let parallel = http.config().max_concurrent_per_host.max(1);
            let http = &http;
            let lookups: Vec<BoxFuture<'_, Result<Vec<Device>, MdmError>>> = wanted
                .keys()
                .map(|serial| {
                    async move {
                        self.list_devices(
                            http,
                            "look up a device by serial",
                            &[("serial_number", serial.as_str())],
                        )
                        .await
                    }
                    .boxed()
                })
                .collect();
            stream::iter(lookups)
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
                .serial_number
                .as_deref()
                .and_then(|s| wanted.get(&normalize_serial(s)))
            else {
                continue;
            };
            if !seen.insert(d.device_id.clone()) {
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

    /// M4: `{web_url}/devices/{device_id}`; `None` without a web URL (see
    /// [`IruConfig::web_url`]).
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        if device.as_str().is_empty() {
            return None;
        }
        let mut url = self.web.clone()?;
        url.set_query(None);
        url.set_fragment(None);
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .extend(["devices", device.as_str()]);
        Some(url.into())
    }

    /// A1: `POST /api/v1/devices/{device_id}/action/blankpush` (200, empty body). Not retried
    /// (a POST). A pending command answers 400 (`ServerError` with Iru's message); an unknown
    /// device 404 (`NotFound`).
    async fn force_sync(&self, device: &MdmDeviceId) -> Result<(), MdmError> {
        const OP: &str = "send a blank push";
        if device.as_str().is_empty() {
            return Err(self.http.error(
                ErrorKind::NotFound,
                OP,
                "the device has no Iru device id",
            ));
        }
        let url = self.url(&[
            "api",
            "v1",
            "devices",
            device.as_str(),
            "action",
            "blankpush",
        ]);
        self.scoped().post_empty(OP, url, &self.auth).await
    }
}
