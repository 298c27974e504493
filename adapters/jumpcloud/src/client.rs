//! The JumpCloud client: the core's `MdmClient` port over JumpCloud's v1 and v2 APIs.

use crate::config::JumpCloudConfig;
use crate::wire::{Member, System, SystemGroup, SystemUser, SystemsPage};
use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use mdmsync_core::{
    Capability, CredentialCheck, MdmClient, MdmDeviceId, MdmDeviceRecord, MdmError, MdmGroup,
    Provider, Snapshot,
};
use mdmsync_http::{
    Auth, Deadline, HttpClient, PageEnd, RequestBuilder, StatusCode, TotalPage, Url, endpoint,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// `limit` sent on every listing: JumpCloud's maximum (the default is 10).
pub const PAGE_LIMIT: u32 = 100;

/// Groups (or users) fetched at once. The HTTP client's per-host limit still applies.
const CONCURRENCY: usize = 4;

/// From this many serials on, one sweep of all systems is cheaper than one filter per serial.
const SWEEP_THRESHOLD: usize = 25;

/// JumpCloud, as the core's [`MdmClient`]. Cheap to share (`Arc`); keep one per connection so
/// connections are pooled.
#[derive(Debug)]
pub struct JumpCloudClient {
    config: JumpCloudConfig,
    http: HttpClient,
    auth: Auth,
}

impl JumpCloudClient {
    /// Builds the client (TLS roots, extra CAs, timeouts). Makes no network call. Fails on an
    /// unusable CA (`SslError`) or setting.
    pub fn new(config: JumpCloudConfig) -> Result<Self, MdmError> {
        let http = HttpClient::new(Provider::JumpCloud, config.http.clone())
            .map_err(|e| e.into_mdm_error(Provider::JumpCloud))?;
        let auth = Auth::x_api_key(config.api_key.clone());
        Ok(Self { config, http, auth })
    }

    /// The configuration.
    pub fn config(&self) -> &JumpCloudConfig {
        &self.config
    }

    fn url(&self, path: &str) -> Url {
        endpoint(&self.config.base_url, path)
    }

    fn scoped(&self) -> HttpClient {
        self.http
            .with_deadline(Deadline::after(self.config.operation_timeout))
    }

    /// A GET with the API key and, for multi-tenant admins, `x-org-id`.
    fn get<'a>(&self, http: &'a HttpClient, op: &str, url: Url) -> RequestBuilder<'a> {
        let req = http.get(op, url).auth(&self.auth);
        match &self.config.org_id {
            Some(org) => req.header("x-org-id", org),
            None => req,
        }
    }

    /// A v2 bare-array listing with `limit=100` and `skip`, read until an **empty** page: a
    /// short page is not the end (null associations are dropped after paging, lessons: the
    /// 200-member truncation). Repeats and loops fail (P2).
    async fn offset_listing<T, K>(
        &self,
        http: &HttpClient,
        op: &str,
        path: &str,
        id: impl FnMut(&T) -> K,
    ) -> Result<Vec<T>, MdmError>
    where
        T: serde::de::DeserializeOwned,
        K: Eq + std::hash::Hash + std::fmt::Display,
    {
        let url = self.url(path);
        let limit = PAGE_LIMIT.to_string();
        http.pager(op)
            .offset(
                PAGE_LIMIT,
                PageEnd::EmptyPage,
                |skip| {
                    let url = url.clone();
                    let limit = limit.clone();
                    async move {
                        self.get(http, op, url)
                            .query(&[("limit", &limit), ("skip", &skip.to_string())])
                            .send_json::<Vec<T>>()
                            .await
                    }
                },
                id,
            )
            .await
    }

    async fn groups(&self, http: &HttpClient) -> Result<Vec<SystemGroup>, MdmError> {
        self.offset_listing(
            http,
            "list system groups",
            "v2/systemgroups",
            |g: &SystemGroup| g.id.clone(),
        )
        .await
    }

    async fn group(&self, http: &HttpClient, group: SystemGroup) -> Result<MdmGroup, MdmError> {
        let op = format!("list members of system group {}", group.id);
        let members = self
            .offset_listing(
                http,
                &op,
                &format!("v2/systemgroups/{}/membership", group.id),
                |m: &Member| m.id.clone(),
            )
            .await?;
        Ok(MdmGroup {
            kind: group.kind(),
            id: group.id.into(),
            name: group.name,
            members: members
                .into_iter()
                .filter(Member::is_system)
                .map(|m| MdmDeviceId::new(m.id))
                .collect(),
        })
    }

    /// A v1 `{totalCount, results}` listing of systems, `limit=100`, `skip`, sorted by `_id`
    /// (JumpCloud's advice for skip paging); ends at `totalCount`.
    async fn systems(
        &self,
        http: &HttpClient,
        op: &str,
        filter: Option<&str>,
    ) -> Result<Vec<System>, MdmError> {
        let url = self.url("systems");
        http.pager(op)
            .numbered_with_total(
                PAGE_LIMIT,
                |page| {
                    let url = url.clone();
                    let skip = (u64::from(page) * u64::from(PAGE_LIMIT)).to_string();
                    let limit = PAGE_LIMIT.to_string();
                    async move {
                        let mut query = vec![
                            ("limit", limit.as_str()),
                            ("skip", skip.as_str()),
                            ("sort", "_id"),
                        ];
                        if let Some(f) = filter {
                            query.push(("filter", f));
                        }
                        let p: SystemsPage =
                            self.get(http, op, url).query(&query).send_json().await?;
                        Ok(TotalPage {
                            total: p.total_count,
                            items: p.results,
                        })
                    }
                },
                |s: &System| s.id.clone(),
            )
            .await
    }

    /// The systems whose serial is one of `wanted` (upper-cased), by one filtered listing per
    /// serial or, for many serials, one sweep.
    async fn systems_by_serial(
        &self,
        http: &HttpClient,
        wanted: &BTreeMap<String, String>,
    ) -> Result<Vec<System>, MdmError> {
        if wanted.len() > SWEEP_THRESHOLD {
            let all = self.systems(http, "list systems", None).await?;
            return Ok(all
                .into_iter()
                .filter(|s| {
                    s.serial()
                        .is_some_and(|x| wanted.contains_key(&x.to_uppercase()))
                })
                .collect());
        }
        let found: Vec<Vec<System>> = stream::iter(wanted.values().cloned())
            .map(|serial| async move {
                let filter = format!("serialNumber:$eq:{serial}");
                let systems = self
                    .systems(http, "find systems by serial", Some(&filter))
                    .await?;
                Ok::<_, MdmError>(
                    systems
                        .into_iter()
                        .filter(|s| s.serial().is_some_and(|x| x.eq_ignore_ascii_case(&serial)))
                        .collect(),
                )
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut seen = BTreeSet::new();
        Ok(found
            .into_iter()
            .flatten()
            .filter(|s| seen.insert(s.id.clone()))
            .collect())
    }

    /// A system user; `None` if it is gone (404).
    async fn user(&self, http: &HttpClient, id: String) -> Result<Option<SystemUser>, MdmError> {
        let resp = self
            .get(
                http,
                "read system user",
                self.url(&format!("systemusers/{id}")),
            )
            .accept_status(StatusCode::NOT_FOUND)
            .send()
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        resp.json().map(Some)
    }

    /// `Yes` if the read succeeds, `No` if refused (403); other failures are errors.
    async fn probe_systems(&self, http: &HttpClient) -> Result<Capability, MdmError> {
        let resp = self
            .get(http, "read systems", self.url("systems"))
            .query(&[("limit", "1")])
            .accept_status(StatusCode::FORBIDDEN)
            .send()
            .await?;
        if resp.status() == StatusCode::FORBIDDEN {
            return Ok(Capability::No);
        }
        resp.json::<SystemsPage>()?;
        Ok(Capability::Yes)
    }
}

/// System ids are 24 hex digits (ObjectIds); anything else is not put into a link.
fn system_id(device: &MdmDeviceId) -> Option<&str> {
    let s = device.as_str();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(s)
}

#[async_trait]
impl MdmClient for JumpCloudClient {
    fn provider(&self) -> Provider {
        Provider::JumpCloud
    }

    /// C1: `GET /api/v2/systemgroups?limit=1` (the key and group read: 401/403 fail the test),
    /// then `GET /api/systems?limit=1` (metadata: a 403 reports `No`). Force sync: `No`,
    /// JumpCloud has no such API.
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        let http = self.scoped();
        let _: Vec<SystemGroup> = self
            .get(&http, "list system groups", self.url("v2/systemgroups"))
            .query(&[("limit", "1")])
            .send_json()
            .await?;
        let metadata = self.probe_systems(&http).await?;
        Ok(CredentialCheck {
            group_sync: Capability::Yes,
            metadata,
            force_sync: Capability::Unsupported,
            server_version: None,
        })
    }

    /// P2: every system group with all its member systems, or an error.
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        let http = self.scoped();
        let groups = self.groups(&http).await?;
        let http = &http;
        let groups: Vec<MdmGroup> = stream::iter(groups)
            .map(|g| self.group(http, g))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(Snapshot {
            provider: Provider::JumpCloud,
            groups,
        })
    }

    /// M1, M6: every system with each serial, with its primary user's id and name.
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError> {
        let mut out: BTreeMap<String, Vec<MdmDeviceRecord>> = BTreeMap::new();
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        // Upper-cased serial → every spelling asked for (asked twice counts once).
        let mut asked: HashMap<String, BTreeSet<&String>> = HashMap::new();
        for s in serials {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                continue;
            }
            out.entry(s.clone()).or_default();
            let key = trimmed.to_uppercase();
            asked.entry(key.clone()).or_default().insert(s);
            wanted.entry(key).or_insert_with(|| trimmed.to_owned());
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let http = self.scoped();
        let systems = self.systems_by_serial(&http, &wanted).await?;
        let user_ids: BTreeSet<String> = systems.iter().filter_map(System::primary_user).collect();
        let http = &http;
        let users: Vec<Option<SystemUser>> = stream::iter(user_ids)
            .map(|id| self.user(http, id))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        let users: HashMap<String, SystemUser> = users
            .into_iter()
            .flatten()
            .map(|u| (u.id.clone(), u))
            .collect();
        for system in &systems {
            let Some(serial) = system.serial() else {
                continue;
            };
            let Some(keys) = asked.get(&serial.to_uppercase()) else {
                continue;
            };
            let user = system.primary_user().and_then(|id| users.get(&id));
            let record = system.to_record(serial, user);
            for k in keys {
                if let Some(v) = out.get_mut(*k) {
                    v.push(record.clone());
                }
            }
        }
        Ok(out)
    }

    /// M4: `https://console.jumpcloud.com/#/devices/{id}/details` (the region's console).
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        let id = system_id(device)?;
        Some(format!("{}#/devices/{id}/details", self.config.console_url))
    }

    /// A1: JumpCloud has no API that makes a device check in.
    async fn force_sync(&self, _device: &MdmDeviceId) -> Result<(), MdmError> {
        Err(MdmError::Unsupported {
            provider: Provider::JumpCloud,
            operation: "force sync",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn client(base: Option<&str>) -> JumpCloudClient {
        let mut config = JumpCloudConfig::new(SecretString::from("k"));
        if let Some(b) = base {
            config = config.with_base_url(b).unwrap();
        }
        JumpCloudClient::new(config).unwrap()
    }

    #[test]
    fn m4_console_links_follow_the_region() {
        let id = MdmDeviceId::new("5d2e1f00a1b2c3d4e5f60001");
        assert_eq!(
            client(None).console_url(&id).as_deref(),
            Some("https://console.jumpcloud.com/#/devices/5d2e1f00a1b2c3d4e5f60001/details")
        );
        assert_eq!(
            client(Some("eu")).console_url(&id).as_deref(),
            Some("https://console.eu.jumpcloud.com/#/devices/5d2e1f00a1b2c3d4e5f60001/details")
        );
        assert_eq!(client(None).console_url(&"../x".into()), None);
    }

    #[tokio::test]
    async fn a1_force_sync_is_not_supported_by_jumpcloud() {
        let err = client(None)
            .force_sync(&"5d2e1f00a1b2c3d4e5f60001".into())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "force sync is not supported by JumpCloud");
        assert_eq!(err.kind(), None);
    }
}
