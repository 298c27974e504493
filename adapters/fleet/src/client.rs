//! The Fleet client: the core's `MdmClient` port over Fleet's REST API.

use crate::config::FleetConfig;
use crate::wire::{HostDetailResponse, HostsResponse, Label, LabelsResponse, MeResponse};
use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use mdmsync_core::{
    Capability, CredentialCheck, ErrorKind, MdmClient, MdmDeviceId, MdmDeviceRecord, MdmError,
    MdmGroup, Provider, Snapshot,
};
use mdmsync_http::{Auth, Deadline, HttpClient, PageEnd, StatusCode, Url, endpoint};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Labels (or hosts) fetched at once. The HTTP client's per-host limit still applies.
const CONCURRENCY: usize = 4;

/// From this many serials on, one sweep of all hosts is cheaper than one search per serial.
const SWEEP_THRESHOLD: usize = 25;

/// A Fleet server, as the core's [`MdmClient`]. Cheap to share (`Arc`); keep one per
/// connection so connections are pooled.
#[derive(Debug)]
pub struct FleetClient {
    config: FleetConfig,
    http: HttpClient,
    auth: Auth,
}

impl FleetClient {
    /// Builds the client (TLS roots, extra CAs, timeouts). Makes no network call. Fails on an
    /// unusable CA (`SslError`) or setting.
    pub fn new(config: FleetConfig) -> Result<Self, MdmError> {
        let http = HttpClient::new(Provider::Fleet, config.http.clone())
            .map_err(|e| e.into_mdm_error(Provider::Fleet))?;
        let auth = Auth::bearer(config.api_token.clone());
        Ok(Self { config, http, auth })
    }

    /// The configuration.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    fn url(&self, path: &str) -> Url {
        endpoint(&self.config.base_url, path)
    }

    fn scoped(&self) -> HttpClient {
        self.http
            .with_deadline(Deadline::after(self.config.operation_timeout))
    }

    fn per_page(&self) -> u32 {
        self.config.per_page.max(1)
    }

    async fn labels(&self, http: &HttpClient) -> Result<Vec<Label>, MdmError> {
        let r: LabelsResponse = http
            .get_json("list labels", self.url("api/v1/fleet/labels"), &self.auth)
            .await?;
        Ok(r.labels)
    }

    /// All hosts of a paged host listing (`page` from 0, `per_page` always sent, a short page
    /// is the last; repeats and loops fail, P2).
    async fn paged_hosts(
        &self,
        http: &HttpClient,
        op: &str,
        path: &str,
        extra: &[(&str, &str)],
    ) -> Result<Vec<crate::wire::Host>, MdmError> {
        let per_page = self.per_page();
        let per_page_text = per_page.to_string();
        let url = self.url(path);
        http.pager(op)
            .numbered(
                per_page,
                PageEnd::ShortPage,
                |page| {
                    let page = page.to_string();
                    let url = url.clone();
                    let per_page_text = per_page_text.clone();
                    async move {
                        let mut query: Vec<(&str, &str)> = vec![
                            ("page", &page),
                            ("per_page", &per_page_text),
                            ("order_key", "id"),
                            ("order_direction", "asc"),
                        ];
                        query.extend_from_slice(extra);
                        let r: HostsResponse = http
                            .get(op, url)
                            .query(&query)
                            .auth(&self.auth)
                            .send_json()
                            .await?;
                        Ok(r.hosts)
                    }
                },
                |h| h.id,
            )
            .await
    }

    async fn label_group(&self, http: &HttpClient, label: Label) -> Result<MdmGroup, MdmError> {
        let op = format!("list hosts of label {}", label.id);
        let hosts = self
            .paged_hosts(
                http,
                &op,
                &format!("api/v1/fleet/labels/{}/hosts", label.id),
                &[],
            )
            .await?;
        if let Some(count) = label.host_count {
            if count != hosts.len() as u64 {
                // Dynamic labels change while we page; a mismatch is worth a line, not a failure.
                tracing::info!(
                    provider = "fleet",
                    label = label.id,
                    host_count = count,
                    listed = hosts.len(),
                    "label host_count differs from the hosts listed (membership changed while paging?)"
                );
            }
        }
        Ok(MdmGroup {
            id: label.id.into(),
            kind: label.kind(),
            name: label.name,
            members: hosts.into_iter().map(|h| MdmDeviceId::from(h.id)).collect(),
        })
    }

    /// The hosts whose serial is one of `wanted` (compared case-insensitively), by one search per
    /// serial or, for many serials, one sweep of all hosts.
    async fn hosts_by_serial(
        &self,
        http: &HttpClient,
        wanted: &BTreeMap<String, String>,
    ) -> Result<Vec<crate::wire::Host>, MdmError> {
        let matches = |h: &crate::wire::Host| {
            h.serial()
                .is_some_and(|s| wanted.contains_key(&s.to_uppercase()))
        };
        if wanted.len() > SWEEP_THRESHOLD {
            let all = self
                .paged_hosts(http, "list hosts", "api/v1/fleet/hosts", &[])
                .await?;
            return Ok(all.into_iter().filter(matches).collect());
        }
        let found: Vec<Vec<crate::wire::Host>> = stream::iter(wanted.values().cloned())
            .map(|serial| async move {
                let hosts = self
                    .paged_hosts(
                        http,
                        "search hosts by serial",
                        "api/v1/fleet/hosts",
                        &[("query", serial.as_str())],
                    )
                    .await?;
                // The search also matches hostnames and substrings: keep exact serials.
                Ok::<_, MdmError>(
                    hosts
                        .into_iter()
                        .filter(|h| h.serial().is_some_and(|s| s.eq_ignore_ascii_case(&serial)))
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
            .filter(|h| seen.insert(h.id))
            .collect())
    }

    /// A host's detail (for `end_users`); `None` if the host went away meanwhile (404).
    async fn host_detail(
        &self,
        http: &HttpClient,
        id: u64,
    ) -> Result<Option<HostDetailResponse>, MdmError> {
        let resp = http
            .get(
                "read host detail",
                self.url(&format!("api/v1/fleet/hosts/{id}")),
            )
            .auth(&self.auth)
            .accept_status(StatusCode::NOT_FOUND)
            .send()
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        resp.json().map(Some)
    }

    /// Whether a read succeeds (`Yes`) or is refused with 403 (`No`); other failures are errors.
    async fn probe(&self, http: &HttpClient, op: &str, url: Url) -> Result<Capability, MdmError> {
        let resp = http
            .get(op, url)
            .auth(&self.auth)
            .accept_status(StatusCode::FORBIDDEN)
            .send()
            .await?;
        if resp.status() == StatusCode::FORBIDDEN {
            return Ok(Capability::No);
        }
        resp.json::<HostsResponse>()?;
        Ok(Capability::Yes)
    }
}

/// Fleet host ids are integers; anything else cannot name a host.
fn host_id(device: &MdmDeviceId) -> Option<u64> {
    let s = device.as_str();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[async_trait]
impl MdmClient for FleetClient {
    fn provider(&self) -> Provider {
        Provider::Fleet
    }

    /// C1: `GET /api/v1/fleet/me` (the token), then the labels (group sync: a 403 fails the
    /// test with `Forbidden`) and one page of one host (metadata: a 403 reports `No`). Refetch
    /// is not tried (it has an effect on the host): `Unknown`.
    async fn validate_credentials(&self) -> Result<CredentialCheck, MdmError> {
        let http = self.scoped();
        let me: MeResponse = http
            .get_json(
                "check the API token",
                self.url("api/v1/fleet/me"),
                &self.auth,
            )
            .await?;
        tracing::debug!(
            provider = "fleet",
            global_role = me.user.global_role.as_deref().unwrap_or("none"),
            teams = me.user.teams.as_ref().map_or(0, Vec::len),
            "Fleet API user"
        );
        self.labels(&http).await?;
        let mut hosts = self.url("api/v1/fleet/hosts");
        hosts
            .query_pairs_mut()
            .append_pair("page", "0")
            .append_pair("per_page", "1");
        let metadata = self.probe(&http, "read hosts", hosts).await?;
        Ok(CredentialCheck {
            group_sync: Capability::Yes,
            metadata,
            force_sync: Capability::Unknown,
            server_version: None,
        })
    }

    /// P2: every non-builtin label with all its hosts, or an error.
    async fn fetch_snapshot(&self) -> Result<Snapshot, MdmError> {
        let http = self.scoped();
        let labels: Vec<Label> = self
            .labels(&http)
            .await?
            .into_iter()
            .filter(|l| !l.is_builtin())
            .collect();
        let http = &http;
        let groups: Vec<MdmGroup> = stream::iter(labels)
            .map(|label| self.label_group(http, label))
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(Snapshot {
            provider: Provider::Fleet,
            groups,
        })
    }

    /// M1, M6: every host with each serial (several when serials repeat), with its end user.
    async fn lookup_devices(
        &self,
        serials: &[String],
    ) -> Result<BTreeMap<String, Vec<MdmDeviceRecord>>, MdmError> {
        let mut out: BTreeMap<String, Vec<MdmDeviceRecord>> = BTreeMap::new();
        // Upper-cased serial → the serial as asked (the result is keyed as asked).
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for s in serials {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                continue;
            }
            out.entry(s.clone()).or_default();
            wanted
                .entry(trimmed.to_uppercase())
                .or_insert_with(|| trimmed.to_owned());
        }
        if wanted.is_empty() {
            return Ok(out);
        }
        let http = self.scoped();
        let hosts = self.hosts_by_serial(&http, &wanted).await?;
        let http = &http;
        let details: Vec<Option<HostDetailResponse>> = stream::iter(hosts)
            .map(|h| async move { self.host_detail(http, h.id).await })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        // Upper-cased serial → every spelling asked for (a serial asked twice counts once).
        let mut asked: HashMap<String, BTreeSet<&String>> = HashMap::new();
        for s in serials {
            asked.entry(s.trim().to_uppercase()).or_default().insert(s);
        }
        for d in details.into_iter().flatten() {
            let Some(serial) = d.host.host.serial() else {
                continue;
            };
            let Some(keys) = asked.get(&serial.to_uppercase()) else {
                continue;
            };
            let record = d.host.into_record(serial);
            for k in keys {
                if let Some(v) = out.get_mut(*k) {
                    v.push(record.clone());
                }
            }
        }
        Ok(out)
    }

    /// M4: `https://{host}/hosts/{id}`.
    fn console_url(&self, device: &MdmDeviceId) -> Option<String> {
        let id = host_id(device)?;
        Some(self.url(&format!("hosts/{id}")).to_string())
    }

    /// A1: `POST /api/v1/fleet/hosts/{id}/refetch`: the host refreshes its details, labels and
    /// policies at its next check-in.
    async fn force_sync(&self, device: &MdmDeviceId) -> Result<(), MdmError> {
        let Some(id) = host_id(device) else {
            return Err(self.http.error(
                ErrorKind::NotFound,
                "refetch host",
                format!(
                    "{device:?} is not a Fleet host id (an integer); refresh the device's metadata"
                ),
            ));
        };
        self.scoped()
            .post_empty(
                "refetch host",
                self.url(&format!("api/v1/fleet/hosts/{id}/refetch")),
                &self.auth,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn client(host: &str) -> FleetClient {
        FleetClient::new(FleetConfig::new(host, SecretString::from("t")).unwrap()).unwrap()
    }

    #[test]
    fn m4_console_link_is_the_host_page() {
        let c = client("fleet.example.com");
        assert_eq!(
            c.console_url(&MdmDeviceId::from(17u64)).as_deref(),
            Some("https://fleet.example.com/hosts/17")
        );
        let c = client("https://example.com/fleet/");
        assert_eq!(
            c.console_url(&"3".into()).as_deref(),
            Some("https://example.com/fleet/hosts/3")
        );
        assert_eq!(c.console_url(&"../admin".into()), None);
    }

    #[tokio::test]
    async fn a1_a_non_numeric_id_is_refused_without_a_request() {
        let c = client("https://127.0.0.1:1");
        let err = c.force_sync(&"abc".into()).await.unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
        assert!(
            err.to_string().contains("Fleet: refetch host failed"),
            "{err}"
        );
    }
}
