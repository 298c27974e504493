//! [`JamfClient`]: the core's `MdmClient` port over the Jamf Pro API.

use crate::config::{JamfConfig, LOOKUP_BATCH, MAX_CONNECTIONS, MAX_PAGE_SIZE};
use crate::wire::{
    BlankPushRequest, BlankPushResponse, Computer, ComputerGroup, InventoryApi, InventoryPage,
    JamfId, VersionInfo, non_blank,
};
use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use mdmsync_core::{
    Capability, CredentialCheck, ErrorKind, GroupKind, MdmClient, MdmDeviceId, MdmDeviceRecord,
    MdmError, MdmGroup, MdmGroupId, MdmUserId, Provider, Snapshot,
};
use mdmsync_http::{
    AdaptiveLatency, Auth, ClientCredentials, Deadline, HttpClient, TotalPage, Url, endpoint,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Sections of the snapshot sweep: members and metadata in one pass.
const SNAPSHOT_SECTIONS: [&str; 4] = [
    "GENERAL",
    "HARDWARE",
    "USER_AND_LOCATION",
    "GROUP_MEMBERSHIPS",
];
/// Sections of a metadata look-up.
const LOOKUP_SECTIONS: [&str; 3] = ["GENERAL", "HARDWARE", "USER_AND_LOCATION"];
/// Time budget of the credential test.
const CHECK_BUDGET: Duration = Duration::from_secs(120);

const HINT_GROUPS: &str = "the Jamf API role needs the privileges \"Read Smart Computer Groups\" and \"Read Static Computer Groups\"";
const HINT_COMPUTERS: &str = "the Jamf API role needs the privilege \"Read Computers\"";
const HINT_PUSH: &str = "the Jamf API role needs the privilege \"View MDM command information in Jamf Pro API\" (and the right to send computer remote commands)";

/// The Jamf Pro adapter. One instance talks to one Jamf Pro server with one API client; keep
/// it for the connection's lifetime so the OAuth token, the inventory generation and the
/// device index are reused. Cheap to share (`&self` everywhere; `Send + Sync`).
pub struct JamfClient {
    http: HttpClient,
    auth: Auth,
    base: Url,
    page_size: u32,
    budget: Duration,
    index_ttl: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The server's version, as last read.
    version: Option<String>,
    /// The inventory generation the server offers, once known.
    inventory: Option<InventoryApi>,
    /// Computer id → MDM management id (blank push wants the latter, A1).
    management_ids: HashMap<String, String>,
    /// Metadata from the last complete sweep.
    index: Option<DeviceIndex>,
}

struct DeviceIndex {
    at: Instant,
    /// Upper-cased serial → records.
    by_serial: HashMap<String, Vec<MdmDeviceRecord>>,
}

impl fmt::Debug for JamfClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JamfClient")
            .field("base", &self.base.as_str())
            .field("page_size", &self.page_size)
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

/// A serial as the look-up matches it: trimmed, upper case.
fn serial_key(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_uppercase())
}

/// An RSQL value in double quotes, `\` and `"` escaped.
fn rsql_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The RSQL filter for a batch of serials.
fn serial_filter(serials: &[String]) -> String {
    match serials {
        [one] => format!("hardware.serialNumber=={}", rsql_quote(one)),
        many => format!(
            "hardware.serialNumber=in=({})",
            many.iter()
                .map(|s| rsql_quote(s))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// A computer's metadata record (M1), with its serial key and management id.
fn record(c: &Computer) -> (Option<String>, Option<MdmDeviceRecord>, Option<String>) {
    let general = c.general.as_ref();
    let management_id = general.and_then(|g| non_blank(g.management_id.as_deref()));
    let serial = c
        .hardware
        .as_ref()
        .and_then(|h| non_blank(h.serial_number.as_deref()));
    let Some(serial) = serial else {
        return (None, None, management_id);
    };
    let user = c.user_and_location.as_ref();
    let username = user.and_then(|u| non_blank(u.username.as_deref()));
    let realname = user.and_then(|u| non_blank(u.realname.as_deref()));
    let rec = MdmDeviceRecord {
        mdm_device_id: MdmDeviceId::new(c.id.0.clone()),
        serial_number: serial.clone(),
        device_name: general.and_then(|g| non_blank(g.name.as_deref())),
        user_id: username.clone().map(MdmUserId::new),
        user_name: realname.or(username),
        last_seen: general.and_then(|g| g.last_seen()),
    };
    (serial_key(&serial), Some(rec), management_id)
}

impl JamfClient {
    /// Builds the client: verified TLS (plus `config.http.extra_ca_pem`), at most 5
    /// connections and adaptive slow-down (P5). Makes no network call.
    pub fn new(config: JamfConfig) -> Result<Self, MdmError> {
        let p = Provider::Jamf;
        if config.client_id.trim().is_empty() {
            return Err(MdmError::new(
                ErrorKind::Unauthorized,
                "Jamf: the API client id is empty; copy it from Jamf Pro → Settings → API roles and clients",
            ));
        }
        let mut http = config.http;
        http.max_concurrent_per_host = http.max_concurrent_per_host.clamp(1, MAX_CONNECTIONS);
        http.adaptive.get_or_insert_with(AdaptiveLatency::default);
        let client = HttpClient::new(p, http).map_err(|e| e.into_mdm_error(p))?;
        let base = config.base_url;
        let auth = Auth::client_credentials(
            ClientCredentials::new(
                endpoint(&base, "api/oauth/token"),
                config.client_id.trim(),
                config.client_secret,
            )
            .with_fallback(endpoint(&base, "api/v1/oauth/token")),
        );
        Ok(Self {
            http: client,
            auth,
            base,
            page_size: config.page_size.clamp(1, MAX_PAGE_SIZE),
            budget: config.budget,
            index_ttl: config.index_ttl,
            state: Mutex::new(State::default()),
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The OAuth tokens fetched so far (P4; for logs and tests).
    pub fn tokens_fetched(&self) -> u64 {
        self.auth.token_cache().map_or(0, |c| c.fetch_count())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn scoped(&self, budget: Duration) -> HttpClient {
        self.http.with_deadline(Deadline::after(budget))
    }

    /// `GET /api/v1/jamf-pro-version`; remembers the inventory generation it implies.
    async fn server_version(&self, http: &HttpClient) -> Result<String, MdmError> {
        let v: VersionInfo = http
            .get_json(
                "read the Jamf Pro version",
                endpoint(&self.base, "api/v1/jamf-pro-version"),
                &self.auth,
            )
            .await?;
        let version = non_blank(v.version.as_deref()).unwrap_or_else(|| "unknown".to_owned());
        let mut state = self.state();
        // Same version as last time: keep what was learnt (a v4 that answered 404).
        if state.version.as_deref() != Some(version.as_str()) || state.inventory.is_none() {
            let api = InventoryApi::for_version(&version);
            tracing::debug!(%version, inventory = api.path(), "Jamf Pro version");
            state.inventory = Some(api);
            state.version = Some(version.clone());
        }
        Ok(version)
    }

    async fn inventory_api(&self, http: &HttpClient) -> Result<InventoryApi, MdmError> {
        if let Some(api) = self.state().inventory {
            return Ok(api);
        }
        self.server_version(http).await?;
        Ok(self.state().inventory.unwrap_or(InventoryApi::V4))
    }

    /// Runs `f` against the server's inventory generation; a v4 404 retries on v3 (an older
    /// server, or one whose version did not parse) and remembers v3 if that works.
    async fn with_inventory<T, F, Fut>(&self, http: &HttpClient, f: F) -> Result<T, MdmError>
    where
        F: Fn(InventoryApi) -> Fut,
        Fut: Future<Output = Result<T, MdmError>>,
    {
        let api = self.inventory_api(http).await?;
        match f(api).await {
            Err(e) if api == InventoryApi::V4 && e.kind() == Some(ErrorKind::NotFound) => {
                let r = f(InventoryApi::V3).await;
                if r.is_ok() {
                    tracing::warn!("Jamf: /api/v4/computers-inventory is missing; using v3");
                    self.state().inventory = Some(InventoryApi::V3);
                }
                r
            }
            r => r,
        }
    }

    /// `GET /api/v1/computer-groups`: every group, empty ones too. Ids normalised; a group
    /// listed twice identically is kept once (a known Jamf quirk), twice differently is an error.
    async fn list_groups(&self, http: &HttpClient) -> Result<Vec<ComputerGroup>, MdmError> {
        const OP: &str = "list computer groups";
        let listed: Vec<ComputerGroup> = http
            .get_json(
                OP,
                endpoint(&self.base, "api/v1/computer-groups"),
                &self.auth,
            )
            .await
            .map_err(|e| hint(e, HINT_GROUPS))?;
        dedupe_groups(listed).map_err(|id| {
            http.error(
                ErrorKind::ServerError,
                OP,
                format!(
                    "group id {id} is listed twice with different names or types; the listing is inconsistent, nothing was applied"
                ),
            )
        })
    }

    /// Every computer matching `filter` (all when `None`), with `sections`, page by page
    /// (`page-size` = the configured size, `sort=id:asc`), checked against `totalCount` (P2).
    async fn sweep(
        &self,
        http: &HttpClient,
        api: InventoryApi,
        op: &str,
        sections: &[&str],
        filter: Option<&str>,
    ) -> Result<Vec<Computer>, MdmError> {
        let url = endpoint(&self.base, api.path());
        let size = self.page_size.to_string();
        let mut fixed: Vec<(&str, &str)> = sections.iter().map(|s| ("section", *s)).collect();
        fixed.push(("page-size", &size));
        fixed.push(("sort", "id:asc"));
        if let Some(f) = filter {
            fixed.push(("filter", f));
        }
        let (fixed, url, auth) = (&fixed, &url, &self.auth);
        http.pager(op)
            .numbered_with_total(
                self.page_size,
                |page| async move {
                    let page = page.to_string();
                    let mut q = vec![("page", page.as_str())];
                    q.extend_from_slice(fixed);
                    let p: InventoryPage = http
                        .get(op, url.clone())
                        .query(&q)
                        .auth(auth)
                        .send_json()
                        .await?;
                    Ok(TotalPage {
                        total: p.total_count,
                        items: p.results,
                    })
                },
                |c: &Computer| c.id.clone(),
            )
            .await
    }

    /// The computers matching `filter`, on whichever inventory generation the server offers.
    async fn inventory(
        &self,
        http: &HttpClient,
        op: &str,
        sections: &[&str],
        filter: Option<&str>,
    ) -> Result<Vec<Computer>, MdmError> {
        self.with_inventory(http, |api| self.sweep(http, api, op, sections, filter))
            .await
            .map_err(|e| hint(e, HINT_COMPUTERS))
    }

    /// One computer's management id, from its inventory record.
    async fn lookup_management_id(
        &self,
        http: &HttpClient,
        id: &JamfId,
    ) -> Result<String, MdmError> {
        const OP: &str = "read a computer's management id";
        let computer: Computer = self
            .with_inventory(http, |api| {
                let mut url = endpoint(&self.base, api.path());
                if let Ok(mut segments) = url.path_segments_mut() {
                    segments.push(&id.0);
                }
                async move {
                    http.get(OP, url)
                        .query(&[("section", "GENERAL")])
                        .auth(&self.auth)
                        .send_json()
                        .await
                }
            })
            .await
            .map_err(|e| hint(e, HINT_COMPUTERS))?;
        let mgmt = computer
            .general
            .as_ref()
            .and_then(|g| non_blank(g.management_id.as_deref()))
            .ok_or_else(|| {
                http.error(
                    ErrorKind::ServerError,
                    OP,
                    format!(
                        "computer {id} has no general.managementId (is it MDM-managed?); a blank push needs it"
                    ),
                )
            })?;
        self.state()
            .management_ids
            .insert(id.0.clone(), mgmt.clone());
        Ok(mgmt)
    }

    /// `POST /api/v2/mdm/blank-push`; `false` if Jamf reports the id in `errorUuids`.
    async fn blank_push(&self, http: &HttpClient, management_id: &str) -> Result<bool, MdmError> {
        let r: BlankPushResponse = http
            .post(
                "send a blank push",
                endpoint(&self.base, "api/v2/mdm/blank-push"),
            )
            .auth(&self.auth)
            .json(&BlankPushRequest {
                client_management_ids: vec![management_id],
            })
            .retry_safe()
            .send_json()
            .await
            .map_err(|e| hint(e, HINT_PUSH))?;
        Ok(!r
            .error_uuids
            .iter()
            .any(|u| u.trim().eq_ignore_ascii_case(management_id)))
    }

    /// Records from the last sweep, if it is fresh enough.
    fn indexed(&self, key: &str) -> Option<Vec<MdmDeviceRecord>> {
        let state = self.state();
        let index = state.index.as_ref()?;
        if self.index_ttl.is_zero() || index.at.elapsed() >= self.index_ttl {
            return None;
        }
        index.by_serial.get(key).cloned()
    }
}

/// Keeps the first of identical repeats (a known Jamf quirk: `/api/v1/computer-groups` can list
/// a group twice); the id of a group listed twice with different names or types is an error.
fn dedupe_groups(listed: Vec<ComputerGroup>) -> Result<Vec<ComputerGroup>, JamfId> {
    let mut seen: HashMap<JamfId, (Option<String>, Option<bool>)> = HashMap::new();
    let mut out = Vec::with_capacity(listed.len());
    for g in listed {
        match seen.get(&g.id) {
            Some((name, smart)) if *name == g.name && *smart == g.smart_group => {
                tracing::warn!(group = %g.id, "Jamf listed a computer group twice; kept once");
            }
            Some(_) => return Err(g.id),
            None => {
                seen.insert(g.id.clone(), (g.name.clone(), g.smart_group));
                out.push(g);
            }
        }
    }
    Ok(out)
}

/// What one sweep yields: the snapshot's groups, the metadata index and the management ids.
struct Assembled {
    groups: Vec<MdmGroup>,
    by_serial: HashMap<String, Vec<MdmDeviceRecord>>,
    management_ids: HashMap<String, String>,
}

/// G3: every listed group (empty ones too) with the computers whose `groupMemberships` name
/// it. A group seen only in memberships (created between the two calls) is included when it
/// has a name. A computer without `groupMemberships` means the server ignored the section: the
/// sweep is unusable (an error detail), never a snapshot of empty groups.
fn assemble(listed: Vec<ComputerGroup>, computers: &[Computer]) -> Result<Assembled, String> {
    let kind = |smart: Option<bool>| match smart {
        Some(true) => GroupKind::Smart,
        Some(false) => GroupKind::Static,
        None => GroupKind::Unknown,
    };
    let mut groups: Vec<MdmGroup> = Vec::with_capacity(listed.len());
    let mut position: HashMap<JamfId, usize> = HashMap::with_capacity(listed.len());
    for g in listed {
        position.insert(g.id.clone(), groups.len());
        groups.push(MdmGroup {
            id: MdmGroupId::new(g.id.0),
            name: g.name.unwrap_or_default(),
            kind: kind(g.smart_group),
            members: Vec::new(),
        });
    }
    let mut by_serial: HashMap<String, Vec<MdmDeviceRecord>> = HashMap::new();
    let mut management_ids = HashMap::with_capacity(computers.len());
    for c in computers {
        let Some(memberships) = &c.group_memberships else {
            return Err(format!(
                "computer {} came without groupMemberships although section GROUP_MEMBERSHIPS was requested; nothing was applied",
                c.id
            ));
        };
        let mut seen = HashSet::with_capacity(memberships.len());
        for m in memberships {
            if !seen.insert(&m.group_id) {
                continue;
            }
            let at = match position.get(&m.group_id) {
                Some(&at) => at,
                None => match non_blank(m.group_name.as_deref()) {
                    Some(name) => {
                        tracing::info!(group = %m.group_id, "Jamf group seen in memberships but not in the group list; included");
                        position.insert(m.group_id.clone(), groups.len());
                        groups.push(MdmGroup {
                            id: MdmGroupId::new(m.group_id.0.clone()),
                            name,
                            kind: kind(m.smart_group),
                            members: Vec::new(),
                        });
                        groups.len() - 1
                    }
                    None => {
                        tracing::warn!(group = %m.group_id, "Jamf group membership without a listed group or name; skipped");
                        continue;
                    }
                },
            };
            groups[at].members.push(MdmDeviceId::new(c.id.0.clone()));
        }
        let (key, rec, mgmt) = record(c);
        if let Some(m) = mgmt {
            management_ids.insert(c.id.0.clone(), m);
        }
        if let (Some(key), Some(rec)) = (key, rec) {
            by_serial.entry(key).or_default().push(rec);
        }
    }
    Ok(Assembled {
        groups,
        by_serial,
        management_ids,
    })
}

#[async_trait]
impl MdmClient for JamfClient {
    fn provider(&self) -> Provider {
        Provider::Jamf
    }

    /// C1/A7: a token (validates host, client id and secret), the version, the group list and
    /// one inventory row. A missing group or computer privilege is `Forbidden` naming it;
    /// force sync is `Unknown` (testing it would push to a device).
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        let http = self.scoped(CHECK_BUDGET.min(self.budget));
        let version = self.server_version(&http).await?;
        self.list_groups(&http).await?;
        const OP: &str = "read one computer";
        let (http_ref, auth) = (&http, &self.auth);
        self.with_inventory(&http, |api| {
            let url = endpoint(&self.base, api.path());
            async move {
                http_ref
                    .get(OP, url)
                    .query(&[("section", "GENERAL"), ("page", "0"), ("page-size", "1")])
                    .auth(auth)
                    .send_json::<InventoryPage>()
                    .await
            }
        })
        .await
        .map_err(|e| hint(e, HINT_COMPUTERS))?;
        Ok(CredentialCheck {
            group_sync: Capability::Yes,
            metadata: Capability::Yes,
            force_sync: Capability::Unknown,
            server_version: Some(version),
        })
    }

    /// P2: the group list, then one inventory sweep whose `groupMemberships` give every
    /// group's members (G3: computer ids). Complete or an error.
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        const OP: &str = "list computers with group memberships";
        let http = self.scoped(self.budget);
        self.server_version(&http).await?;
        let listed = self.list_groups(&http).await?;
        let computers = self.inventory(&http, OP, &SNAPSHOT_SECTIONS, None).await?;

        let Assembled {
            groups,
            by_serial,
            management_ids,
        } = assemble(listed, &computers)
            .map_err(|detail| http.error(ErrorKind::ServerError, OP, detail))?;
        {
            let mut state = self.state();
            state.management_ids.extend(management_ids);
            state.index = Some(DeviceIndex {
                at: Instant::now(),
                by_serial,
            });
        }
        tracing::info!(
            groups = groups.len(),
            computers = computers.len(),
            "Jamf snapshot fetched"
        );
        Ok(Snapshot {
            provider: Provider::Jamf,
            groups,
        })
    }

    /// M1: answered from the last sweep while it is fresh; other serials by RSQL look-ups
    /// of up to 50 serials each, at most 5 at once. Every requested serial is a key; unknown
    /// and blank serials map to no record.
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError> {
        const OP: &str = "look up computers by serial number";
        let mut out: BTreeMap<String, Vec<MdmDeviceRecord>> = BTreeMap::new();
        // Serial key → the requested spellings, for the serials the index could not answer.
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
        self.inventory_api(&http).await?;
        let queries: Vec<String> = wanted
            .values()
            .filter_map(|v| v.first().map(|s| s.trim().to_owned()))
            .collect();
        let filters: Vec<String> = queries.chunks(LOOKUP_BATCH).map(serial_filter).collect();
        let http = &http;
        let found: Vec<Vec<Computer>> = stream::iter(filters)
            .map(|filter: String| async move {
                self.inventory(http, OP, &LOOKUP_SECTIONS, Some(&filter))
                    .await
            })
            .buffered(MAX_CONNECTIONS)
            .try_collect()
            .await?;
        let mut state = self.state();
        for c in found.iter().flatten() {
            let (key, rec, mgmt) = record(c);
            if let Some(m) = mgmt {
                state.management_ids.insert(c.id.0.clone(), m);
            }
            let (Some(key), Some(rec)) = (key, rec) else {
                continue;
            };
            // The filter may match more loosely (wildcards, case); keep exact serials only.
            if let Some(keys) = wanted.get(&key) {
                for k in keys {
                    out.entry((*k).clone()).or_default().push(rec.clone());
                }
            }
        }
        Ok(out)
    }

    /// M4: `https://{host}/computers.html?id={id}&o=r`.
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        let id = JamfId::parse(device.as_str())?;
        let mut url = endpoint(&self.base, "computers.html");
        url.query_pairs_mut()
            .append_pair("id", &id.0)
            .append_pair("o", "r");
        Some(url.to_string())
    }

    /// A1: a blank push to the computer's management id (from the last sweep or look-up, else
    /// read from its inventory record). If Jamf rejects a remembered id, it is read afresh
    /// and the push sent once more.
    async fn force_sync(&self, device: &MdmDeviceId) -> Result<(), MdmError> {
        let http = self.scoped(self.budget);
        let id = JamfId::parse(device.as_str()).ok_or_else(|| {
            http.error(
                ErrorKind::NotFound,
                "send a blank push",
                "the device has no Jamf computer id",
            )
        })?;
        let remembered = self.state().management_ids.get(&id.0).cloned();
        let mgmt = match remembered {
            Some(m) => {
                if self.blank_push(&http, &m).await? {
                    return Ok(());
                }
                tracing::info!(computer = %id, "Jamf refused a remembered management id; reading it again");
                self.state().management_ids.remove(&id.0);
                let fresh = self.lookup_management_id(&http, &id).await?;
                if fresh == m {
                    return Err(refused(&http, &id, &m));
                }
                fresh
            }
            None => self.lookup_management_id(&http, &id).await?,
        };
        if self.blank_push(&http, &mgmt).await? {
            Ok(())
        } else {
            Err(refused(&http, &id, &mgmt))
        }
    }
}

fn refused(http: &HttpClient, id: &JamfId, mgmt: &str) -> MdmError {
    http.error(
        ErrorKind::ServerError,
        "send a blank push",
        format!(
            "Jamf listed management id {mgmt} of computer {id} in errorUuids (HTTP 200): the push was not queued; check that the computer is still enrolled"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    #[test]
    fn g3_assemble_joins_memberships_to_the_listed_groups() {
        let groups: Vec<ComputerGroup> = fixture("computer_groups_v1.json");
        let p0: crate::wire::InventoryPage = fixture("computers_inventory_v3_page0.json");
        let p1: crate::wire::InventoryPage = fixture("computers_inventory_v4_page1.json");
        let computers: Vec<Computer> = p0.results.into_iter().chain(p1.results).collect();
        let a = assemble(groups, &computers).unwrap();
        let members = |id: &str| -> Vec<String> {
            let g = a.groups.iter().find(|g| g.id.as_str() == id).unwrap();
            g.members.iter().map(|m| m.as_str().to_owned()).collect()
        };
        assert_eq!(a.groups.len(), 3);
        assert_eq!(members("1"), ["7", "9"], "string and int group ids meet");
        assert_eq!(
            members("4"),
            Vec::<String>::new(),
            "an empty static group is kept"
        );
        assert_eq!(members("12"), ["7"]);
        assert_eq!(a.groups[0].kind, GroupKind::Smart);
        assert_eq!(a.groups[1].kind, GroupKind::Static);
        // Metadata and management ids from the same pass; computer 9 had no sections.
        assert_eq!(
            a.by_serial["C02FIX000007"][0].user_name.as_deref(),
            Some("Ada Lovelace")
        );
        assert_eq!(a.by_serial.len(), 2);
        assert_eq!(a.management_ids.len(), 2);
        assert!(!a.management_ids.contains_key("9"));
    }

    #[test]
    fn g3_a_group_only_seen_in_memberships_is_included_and_a_missing_section_is_an_error() {
        let computers: Vec<Computer> = serde_json::from_value(serde_json::json!([
            {"id": "1", "groupMemberships": [
                {"groupId": 99, "groupName": "Created Just Now", "smartGroup": false},
                {"groupId": "99", "groupName": "Created Just Now", "smartGroup": false},
                {"groupId": "98"}
            ]},
            {"id": 2, "groupMemberships": [{"groupId": "99", "groupName": "Created Just Now"}]}
        ]))
        .unwrap();
        let a = assemble(vec![], &computers).unwrap();
        assert_eq!(
            a.groups.len(),
            1,
            "a membership without a name or listed group is skipped"
        );
        assert_eq!(a.groups[0].name, "Created Just Now");
        let ids: Vec<&str> = a.groups[0].members.iter().map(|m| m.as_str()).collect();
        assert_eq!(ids, ["1", "2"], "a repeated membership counts once");

        let no_section: Vec<Computer> =
            serde_json::from_value(serde_json::json!([{"id": "3", "groupMemberships": null}]))
                .unwrap();
        let err = assemble(vec![], &no_section).err().unwrap();
        assert!(err.contains("without groupMemberships"), "{err}");
    }

    #[test]
    fn p2_identical_repeats_in_the_group_list_are_kept_once_conflicts_refused() {
        let listed: Vec<ComputerGroup> = serde_json::from_value(serde_json::json!([
            {"id": "1", "name": "A", "smartGroup": true},
            {"id": 1, "name": "A", "smartGroup": true},
            {"id": "2", "name": "B", "smartGroup": false}
        ]))
        .unwrap();
        let kept = dedupe_groups(listed).unwrap();
        assert_eq!(
            kept.iter().map(|g| g.id.0.as_str()).collect::<Vec<_>>(),
            ["1", "2"]
        );
        let conflicting: Vec<ComputerGroup> = serde_json::from_value(serde_json::json!([
            {"id": "1", "name": "A", "smartGroup": true},
            {"id": "1", "name": "A renamed", "smartGroup": true}
        ]))
        .unwrap();
        assert_eq!(dedupe_groups(conflicting).err().unwrap().0, "1");
    }

    #[test]
    fn m1_serial_filters_are_quoted_rsql() {
        assert_eq!(
            serial_filter(&["C02ABC".to_owned()]),
            "hardware.serialNumber==\"C02ABC\""
        );
        assert_eq!(
            serial_filter(&["A".to_owned(), "B\"x".to_owned()]),
            "hardware.serialNumber=in=(\"A\",\"B\\\"x\")"
        );
        assert_eq!(serial_key("  c02abc "), Some("C02ABC".to_owned()));
        assert_eq!(serial_key("   "), None);
    }

    #[test]
    fn m1_record_uses_realname_else_username() {
        let c: Computer = serde_json::from_value(serde_json::json!({
            "id": "5",
            "general": {"name": "Lab Mac", "managementId": "m-5", "lastContactTime": "2025-01-02T03:04:05Z"},
            "hardware": {"serialNumber": " C02X "},
            "userAndLocation": {"username": "kiosk", "realname": ""}
        }))
        .unwrap();
        let (key, rec, mgmt) = record(&c);
        let rec = rec.unwrap();
        assert_eq!(key.as_deref(), Some("C02X"));
        assert_eq!(mgmt.as_deref(), Some("m-5"));
        assert_eq!(rec.mdm_device_id.as_str(), "5");
        assert_eq!(rec.serial_number, "C02X");
        assert_eq!(rec.user_id.unwrap().as_str(), "kiosk");
        assert_eq!(rec.user_name.as_deref(), Some("kiosk"));
        assert_eq!(rec.device_name.as_deref(), Some("Lab Mac"));
        assert!(rec.last_seen.is_some());
    }
}
