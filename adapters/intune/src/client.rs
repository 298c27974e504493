//! [`IntuneClient`]: the core's `MdmClient` port over Microsoft Graph.

use crate::config::{IntuneConfig, MAX_DEVICE_PAGE_SIZE, MAX_DIRECTORY_PAGE_SIZE};
use crate::wire::{
    DirectoryDevice, GraphError, Group, ManagedDevice, Page, join_index, join_members, non_blank,
};
use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use mdmsync_core::{
    Capability, CredentialCheck, ErrorKind, GroupKind, MdmClient, MdmDeviceId, MdmDeviceRecord,
    MdmError, MdmGroup, MdmGroupId, MdmUserId, Provider, Snapshot,
};
use mdmsync_http::{
    Auth, ClientCredentials, Deadline, HttpClient, LinkPage, StatusCode, Url, endpoint,
};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Time budget of the credential test.
const CHECK_BUDGET: Duration = Duration::from_secs(120);
/// Groups whose members the credential test reads to prove `Device.Read.All`.
const CHECK_GROUPS: usize = 3;
/// The managed-device fields this adapter reads.
const DEVICE_FIELDS: &str =
    "id,azureADDeviceId,deviceName,userId,userDisplayName,serialNumber,lastSyncDateTime";

const HINT_GROUPS: &str = "the app registration needs the Microsoft Graph application permission GroupMember.Read.All (or Group.Read.All), with admin consent";
const HINT_MEMBERS: &str = "the app registration needs the Microsoft Graph application permissions GroupMember.Read.All and Device.Read.All, with admin consent";
const HINT_DEVICES: &str = "the app registration needs the Microsoft Graph application permission DeviceManagementManagedDevices.Read.All, with admin consent, and the tenant an Intune licence";
const HINT_SYNC: &str = "the app registration needs the Microsoft Graph application permission DeviceManagementManagedDevices.PrivilegedOperations.All (ReadWrite.All is not enough)";
const DEVICE_READ_ALL: &str = "group members came back without deviceId (HTTP 200, \"limited information\"): the app registration lacks the Microsoft Graph application permission Device.Read.All; grant it with admin consent";

/// The Microsoft Intune adapter: Entra ID security groups with their Intune managed devices.
/// One instance talks to one tenant with one app registration; keep it for the connection's
/// lifetime so the token and the device index are reused. `Send + Sync`.
pub struct IntuneClient {
    http: HttpClient,
    auth: Auth,
    graph: Url,
    console: Url,
    directory_top: u32,
    device_top: u32,
    member_concurrency: usize,
    max_restarts: u32,
    budget: Duration,
    index_ttl: Duration,
    sweep_threshold: usize,
    index: Mutex<Option<DeviceIndex>>,
}

struct DeviceIndex {
    at: Instant,
    /// Upper-cased serial → records.
    by_serial: HashMap<String, Vec<MdmDeviceRecord>>,
}

impl fmt::Debug for IntuneClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntuneClient")
            .field("graph", &self.graph.as_str())
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

/// Appends what to grant to a `Forbidden` error.
fn hint(e: MdmError, what: &str) -> MdmError {
    match e.kind() {
        Some(ErrorKind::Forbidden) => {
            MdmError::new(ErrorKind::Forbidden, format!("{}; {what}", e.message()))
        }
        _ => e,
    }
}

/// Percent-encodes a query component the way Graph expects (`%20` for spaces, not `+`);
/// OData punctuation (`$ , ' ( ) :`) stays readable.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'$'
            | b','
            | b'\''
            | b'('
            | b')'
            | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An OData string literal: `'…'` with `'` doubled.
fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A serial as look-ups match it: trimmed, upper case.
fn serial_key(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_uppercase())
}

/// A managed device's metadata record (M1), keyed by serial; `None` without a serial.
fn record(d: &ManagedDevice) -> Option<(String, MdmDeviceRecord)> {
    let serial = non_blank(d.serial_number.as_deref())?;
    let id = non_blank(Some(&d.id))?;
    let rec = MdmDeviceRecord {
        mdm_device_id: MdmDeviceId::new(id),
        serial_number: serial.clone(),
        device_name: non_blank(d.device_name.as_deref()),
        user_id: non_blank(d.user_id.as_deref()).map(MdmUserId::new),
        user_name: non_blank(d.user_display_name.as_deref()),
        last_seen: d.last_seen(),
    };
    Some((serial_key(&serial)?, rec))
}

fn index_of(devices: &[ManagedDevice]) -> HashMap<String, Vec<MdmDeviceRecord>> {
    let mut by_serial: HashMap<String, Vec<MdmDeviceRecord>> = HashMap::new();
    for (key, rec) in devices.iter().filter_map(record) {
        by_serial.entry(key).or_default().push(rec);
    }
    by_serial
}

impl IntuneClient {
    /// Builds the client: verified TLS (plus `config.http.extra_ca_pem`), the token cache
    /// for `{login}/{tenant}/oauth2/v2.0/token` with the Graph scope. Makes no network call.
    pub fn new(config: IntuneConfig) -> Result<Self, MdmError> {
        let p = Provider::Intune;
        let token_url = config.token_url();
        let http = HttpClient::new(p, config.http).map_err(|e| e.into_mdm_error(p))?;
        let auth = Auth::client_credentials(
            ClientCredentials::new(token_url, config.client_id, config.client_secret)
                .with_scope(config.scope),
        );
        Ok(Self {
            http,
            auth,
            graph: config.graph_url,
            console: config.console_url,
            directory_top: config.directory_page_size.clamp(1, MAX_DIRECTORY_PAGE_SIZE),
            device_top: config.device_page_size.clamp(1, MAX_DEVICE_PAGE_SIZE),
            member_concurrency: config.member_concurrency.max(1),
            max_restarts: config.max_listing_restarts,
            budget: config.budget,
            index_ttl: config.index_ttl,
            sweep_threshold: config.lookup_sweep_threshold,
            index: Mutex::new(None),
        })
    }

    /// The Graph base URL.
    pub fn graph_url(&self) -> &Url {
        &self.graph
    }

    /// The OAuth tokens fetched so far (P4; for logs and tests).
    pub fn tokens_fetched(&self) -> u64 {
        self.auth.token_cache().map_or(0, |c| c.fetch_count())
    }

    fn index(&self) -> MutexGuard<'_, Option<DeviceIndex>> {
        self.index.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn scoped(&self, budget: Duration) -> HttpClient {
        self.http.with_deadline(Deadline::after(budget))
    }

    /// `{graph}/{segments…}?{query}`, segments percent-encoded, query encoded for OData.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = endpoint(&self.graph, "");
        if let Ok(mut s) = url.path_segments_mut() {
            s.pop_if_empty();
            for seg in segments {
                s.push(seg);
            }
        }
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        url.set_query((!q.is_empty()).then(|| q.join("&")).as_deref());
        url
    }

    /// Every item of a Graph listing from `first`, following `@odata.nextLink` verbatim (P2).
    /// A `Directory_ExpiredPageToken` restarts the listing from `first`, at most
    /// `max_listing_restarts` times (P5). `eventual` sends `ConsistencyLevel: eventual`.
    async fn list<T: DeserializeOwned>(
        &self,
        http: &HttpClient,
        op: &str,
        first: &Url,
        eventual: bool,
        id: fn(&T) -> String,
    ) -> Result<Vec<T>, MdmError> {
        let mut restarts = 0;
        loop {
            let expired = AtomicBool::new(false);
            let (expired_ref, auth) = (&expired, &self.auth);
            let result = http
                .pager(op)
                .next_link(
                    first.clone(),
                    |url| async move {
                        let mut req = http
                            .get(op, url)
                            .auth(auth)
                            .accept_status(StatusCode::BAD_REQUEST);
                        if eventual {
                            req = req.header("ConsistencyLevel", "eventual");
                        }
                        let resp = req.send().await?;
                        if resp.status() == StatusCode::BAD_REQUEST {
                            let code = serde_json::from_slice::<GraphError>(resp.body())
                                .ok()
                                .and_then(|e| e.error.code);
                            if code.as_deref() == Some("Directory_ExpiredPageToken") {
                                expired_ref.store(true, Ordering::Relaxed);
                                return Err(resp.fail(
                                    ErrorKind::ServerError,
                                    "the listing's page token expired (Directory_ExpiredPageToken)",
                                ));
                            }
                            return Err(
                                resp.fail(ErrorKind::ServerError, "Graph refused the query")
                            );
                        }
                        let page: Page<T> = resp.json()?;
                        Ok(LinkPage {
                            items: page.value,
                            next: page.next_link,
                        })
                    },
                    id,
                )
                .await;
            match result {
                Err(_) if expired.load(Ordering::Relaxed) && restarts < self.max_restarts => {
                    restarts += 1;
                    tracing::warn!(
                        op,
                        restarts,
                        "Graph page token expired; restarting the listing"
                    );
                }
                Err(e) if expired.load(Ordering::Relaxed) => {
                    return Err(MdmError::new(
                        ErrorKind::ServerError,
                        format!(
                            "{}; gave up after restarting the listing {restarts} times",
                            e.message()
                        ),
                    ));
                }
                r => return r,
            }
        }
    }

    /// Every security group (assigned and dynamic; Microsoft 365 groups left out).
    async fn security_groups(&self, http: &HttpClient) -> Result<Vec<Group>, MdmError> {
        let top = self.directory_top.to_string();
        let first = self.url(
            &["groups"],
            &[
                ("$filter", "securityEnabled eq true"),
                (
                    "$select",
                    "id,displayName,groupTypes,securityEnabled,mailEnabled",
                ),
                ("$top", &top),
            ],
        );
        let groups: Vec<Group> = self
            .list(http, "list security groups", &first, false, |g: &Group| {
                g.id.to_ascii_lowercase()
            })
            .await
            .map_err(|e| hint(e, HINT_GROUPS))?;
        Ok(groups
            .into_iter()
            .filter(Group::is_security_group)
            .collect())
    }

    /// A group's device members, nested groups included (`transitiveMembers`, cast to
    /// devices, which needs `ConsistencyLevel: eventual` and `$count=true`). A member without
    /// `deviceId` means `Device.Read.All` is missing: `Forbidden`, never an empty group.
    async fn device_members(
        &self,
        http: &HttpClient,
        group: &Group,
    ) -> Result<Vec<DirectoryDevice>, MdmError> {
        const OP: &str = "list device members of a group";
        let top = self.directory_top.to_string();
        let first = self.url(
            &[
                "groups",
                &group.id,
                "transitiveMembers",
                "microsoft.graph.device",
            ],
            &[
                ("$select", "id,deviceId"),
                ("$top", &top),
                ("$count", "true"),
            ],
        );
        let members: Vec<DirectoryDevice> = self
            .list(http, OP, &first, true, |m: &DirectoryDevice| {
                m.id.to_ascii_lowercase()
            })
            .await
            .map_err(|e| hint(e, HINT_MEMBERS))?;
        if members.iter().any(|m| m.entra_device_id().is_none()) {
            return Err(http.error(
                ErrorKind::Forbidden,
                OP,
                format!(
                    "group {:?} ({}): {DEVICE_READ_ALL}",
                    group.display_name.as_deref().unwrap_or_default(),
                    group.id
                ),
            ));
        }
        Ok(members)
    }

    /// Managed devices: all of them, or those matching an OData `$filter`.
    async fn managed_devices(
        &self,
        http: &HttpClient,
        filter: Option<&str>,
    ) -> Result<Vec<ManagedDevice>, MdmError> {
        let top = self.device_top.to_string();
        let mut query = vec![("$select", DEVICE_FIELDS), ("$top", top.as_str())];
        if let Some(f) = filter {
            query.push(("$filter", f));
        }
        let first = self.url(&["deviceManagement", "managedDevices"], &query);
        self.list(
            http,
            "list Intune managed devices",
            &first,
            false,
            |d: &ManagedDevice| d.id.to_ascii_lowercase(),
        )
        .await
        .map_err(|e| hint(e, HINT_DEVICES))
    }

    fn remember(&self, devices: &[ManagedDevice]) {
        *self.index() = Some(DeviceIndex {
            at: Instant::now(),
            by_serial: index_of(devices),
        });
    }

    /// Records from the last device listing, if it is fresh enough. `None`: not in it or stale.
    fn indexed(&self, key: &str) -> Option<Vec<MdmDeviceRecord>> {
        let index = self.index();
        let index = index.as_ref()?;
        if self.index_ttl.is_zero() || index.at.elapsed() >= self.index_ttl {
            return None;
        }
        index.by_serial.get(key).cloned()
    }

    /// The first page of a listing only (credential test probes).
    async fn first_page<T: DeserializeOwned>(
        &self,
        http: &HttpClient,
        op: &str,
        url: Url,
        eventual: bool,
    ) -> Result<Vec<T>, MdmError> {
        let mut req = http.get(op, url).auth(&self.auth);
        if eventual {
            req = req.header("ConsistencyLevel", "eventual");
        }
        Ok(req.send_json::<Page<T>>().await?.value)
    }
}

#[async_trait]
impl MdmClient for IntuneClient {
    fn provider(&self) -> Provider {
        Provider::Intune
    }

    /// C1/A7: a token (tenant, client id, secret), one page of security groups (group read),
    /// one managed device (Intune read and licence), and the device members of up to three
    /// groups (`Device.Read.All`: members without `deviceId` are `Forbidden`). Force sync is
    /// `Unknown` (testing it would make a device check in).
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        let http = self.scoped(CHECK_BUDGET.min(self.budget));
        let groups: Vec<Group> = self
            .first_page(
                &http,
                "list security groups",
                self.url(
                    &["groups"],
                    &[
                        ("$filter", "securityEnabled eq true"),
                        ("$select", "id,displayName,groupTypes,securityEnabled"),
                        ("$top", "5"),
                    ],
                ),
                false,
            )
            .await
            .map_err(|e| hint(e, HINT_GROUPS))?;
        self.first_page::<ManagedDevice>(
            &http,
            "list Intune managed devices",
            self.url(
                &["deviceManagement", "managedDevices"],
                &[("$select", "id"), ("$top", "1")],
            ),
            false,
        )
        .await
        .map_err(|e| hint(e, HINT_DEVICES))?;
        const OP: &str = "list device members of a group";
        for g in groups
            .iter()
            .filter(|g| g.is_security_group())
            .take(CHECK_GROUPS)
        {
            let members: Vec<DirectoryDevice> = self
                .first_page(
                    &http,
                    OP,
                    self.url(
                        &[
                            "groups",
                            &g.id,
                            "transitiveMembers",
                            "microsoft.graph.device",
                        ],
                        &[
                            ("$select", "id,deviceId"),
                            ("$top", "1"),
                            ("$count", "true"),
                        ],
                    ),
                    true,
                )
                .await
                .map_err(|e| hint(e, HINT_MEMBERS))?;
            if members.iter().any(|m| m.entra_device_id().is_none()) {
                return Err(http.error(ErrorKind::Forbidden, OP, DEVICE_READ_ALL));
            }
            if !members.is_empty() {
                break; // deviceId visible: Device.Read.All is granted.
            }
        }
        Ok(CredentialCheck {
            group_sync: Capability::Yes,
            metadata: Capability::Yes,
            force_sync: Capability::Unknown,
            server_version: None,
        })
    }

    /// P2/G3: every security group, every managed device, then each group's transitive
    /// device members (several groups at once), joined `deviceId` → `azureADDeviceId` →
    /// managed device `id`. Complete or an error.
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        let http = self.scoped(self.budget);
        let groups = self.security_groups(&http).await?;
        let devices = self.managed_devices(&http, None).await?;
        let index = join_index(&devices);
        let (http, groups_ref) = (&http, &groups);
        let lists: Vec<Vec<DirectoryDevice>> = stream::iter(0..groups.len())
            .map(|i| self.device_members(http, &groups_ref[i]))
            .buffered(self.member_concurrency)
            .try_collect()
            .await?;
        let mut unmanaged = 0;
        let snapshot_groups = groups
            .iter()
            .zip(&lists)
            .map(|(g, members)| {
                let (ids, skipped) = join_members(members, &index);
                unmanaged += skipped;
                MdmGroup {
                    id: MdmGroupId::new(g.id.clone()),
                    name: g.display_name.clone().unwrap_or_default(),
                    kind: if g.is_dynamic() {
                        GroupKind::Smart
                    } else {
                        GroupKind::Static
                    },
                    members: ids.into_iter().map(MdmDeviceId::new).collect(),
                }
            })
            .collect::<Vec<_>>();
        self.remember(&devices);
        tracing::info!(
            groups = snapshot_groups.len(),
            managed_devices = devices.len(),
            members_without_managed_device = unmanaged,
            "Intune snapshot fetched"
        );
        Ok(Snapshot {
            provider: Provider::Intune,
            groups: snapshot_groups,
        })
    }

    /// M1: answered from the last device listing while it is fresh; other serials by one
    /// `$filter=serialNumber eq '…'` request each, or, for more than
    /// `lookup_sweep_threshold` of them, by listing every managed device once.
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError> {
        let mut out: BTreeMap<String, Vec<MdmDeviceRecord>> = BTreeMap::new();
        let mut wanted: BTreeMap<String, BTreeSet<&String>> = BTreeMap::new();
        for s in serials {
            out.entry(s.clone()).or_default();
            let Some(key) = serial_key(s) else { continue };
            match self.indexed(&key) {
                Some(records) => {
                    out.insert(s.clone(), records);
                }
                None => {
                    wanted.entry(key).or_default().insert(s);
                }
            }
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let http = self.scoped(self.budget);
        let found: HashMap<String, Vec<MdmDeviceRecord>> = if wanted.len() > self.sweep_threshold {
            let devices = self.managed_devices(&http, None).await?;
            self.remember(&devices);
            index_of(&devices)
        } else {
            let filters: Vec<String> = wanted
                .values()
                .filter_map(|v| v.first())
                .map(|s| format!("serialNumber eq {}", odata_string(s.trim())))
                .collect();
            let http = &http;
            let lists: Vec<Vec<ManagedDevice>> = stream::iter(filters)
                .map(|f: String| async move { self.managed_devices(http, Some(&f)).await })
                .buffered(self.member_concurrency)
                .try_collect()
                .await?;
            index_of(&lists.concat())
        };
        for (key, spellings) in &wanted {
            if let Some(records) = found.get(key) {
                for s in spellings {
                    out.insert((*s).clone(), records.clone());
                }
            }
        }
        Ok(out)
    }

    /// M4: the device's overview blade in the Intune admin center.
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        let id = device.as_str().trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        Some(format!(
            "{}#view/Microsoft_Intune_Devices/DeviceSettingsMenuBlade/~/overview/mdmDeviceId/{id}",
            self.console
        ))
    }

    /// A1: `POST /deviceManagement/managedDevices/{id}/syncDevice` (204).
    async fn force_sync(&self, device: &MdmDeviceId) -> Result<(), MdmError> {
        const OP: &str = "ask a managed device to sync";
        let http = self.scoped(self.budget);
        let id = device.as_str().trim();
        if id.is_empty() {
            return Err(http.error(
                ErrorKind::NotFound,
                OP,
                "the device has no Intune managed device id",
            ));
        }
        let url = self.url(
            &["deviceManagement", "managedDevices", id, "syncDevice"],
            &[],
        );
        http.post(OP, url)
            .auth(&self.auth)
            .retry_safe()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| hint(e, HINT_SYNC))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odata_queries_are_encoded_with_percent_20_and_quotes_doubled() {
        assert_eq!(
            encode("securityEnabled eq true"),
            "securityEnabled%20eq%20true"
        );
        assert_eq!(
            encode(&format!("serialNumber eq {}", odata_string("C02'X&y"))),
            "serialNumber%20eq%20'C02''X%26y'"
        );
        assert_eq!(encode("id,deviceId"), "id,deviceId");
    }
}
