//! The control side of a running simulator: change the scenario, inject faults, read the
//! request log. [`SimControl`] is the Rust handle; the same operations are served over HTTP under
//! `/_sim/...` (see `docs/simulator.md`).

use crate::SimError;
use crate::scenario::{Device, Group, Scenario};
use crate::state::Shared;
use chrono::{DateTime, Utc};
use mdmsync_core::Provider;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What an injected fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// 401 with the provider's error body.
    Unauthorized,
    /// 403 with the provider's error body.
    Forbidden,
    /// 404 with the provider's error body.
    NotFound,
    /// 429 with `Retry-After: retry_after_secs` and the provider's error body.
    TooManyRequests {
        /// Seconds sent in `Retry-After`.
        retry_after_secs: u64,
    },
    /// 500 with the provider's error body.
    InternalServerError,
    /// 503, with `Retry-After` when given.
    ServiceUnavailable {
        /// Seconds sent in `Retry-After`, if any.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Any status (e.g. 400, 502, 504) with the provider's error body.
    Status {
        /// The HTTP status.
        status: u16,
        /// Seconds sent in `Retry-After`, if any.
        #[serde(default)]
        retry_after_secs: Option<u64>,
    },
    /// Wait this long, then serve normally (set it past the client's timeout).
    Delay {
        /// Milliseconds.
        millis: u64,
    },
    /// 200 with a body that is not JSON syntax (`Content-Type: application/json`).
    MalformedJson,
    /// The real response with its body cut in half (`Content-Length` matches the cut body).
    TruncatedJson,
    /// Continuation requests (a page other than the first) are served the first page again, so
    /// the next cursor points back at a page already seen.
    PaginationLoop,
    /// Continuation pages start one item early: the previous page's last item is repeated.
    DuplicateItems,
    /// The page is one item short (its first item is dropped) while later pages are still
    /// served: a client that stops on a short page truncates.
    ShortPage,
    /// Close the connection without sending any response.
    DropConnection,
    /// Group listings return no groups (and inventory sweeps no group memberships).
    EmptyGroupList,
    /// Intune: a request carrying `$skiptoken` gets 400 `Directory_ExpiredPageToken` (other
    /// providers: their 400 body). Applies only to continuation requests.
    ExpiredPageToken,
}

impl FaultKind {
    /// Whether the fault only applies to continuation requests (page > 0, a cursor, an offset).
    pub fn continuation_only(&self) -> bool {
        matches!(
            self,
            FaultKind::PaginationLoop | FaultKind::DuplicateItems | FaultKind::ExpiredPageToken
        )
    }

    /// The short name (the `kind` tag).
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("kind").and_then(|k| k.as_str().map(str::to_owned)))
            .unwrap_or_default()
    }
}

/// A fault and which requests it hits. Every given criterion must match; none given = every
/// provider request. The control API (`/_sim/...`) is never faulted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRule {
    /// What happens.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// HTTP method, e.g. `GET` (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path prefix, e.g. `/api/v1/devices` (query not included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// Route name, e.g. `jamf.inventory` (see `docs/simulator.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// How many matching requests it hits; `None` = until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
}

impl FaultRule {
    /// A fault hitting every provider request, until removed.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            kind,
            method: None,
            path_prefix: None,
            route: None,
            times: None,
        }
    }

    /// Only requests whose path starts with `prefix`.
    pub fn path(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Only requests with this method.
    pub fn method(mut self, method: impl Into<String>) -> Self {
        self.method = Some(method.into());
        self
    }

    /// Only requests to this route name.
    pub fn route(mut self, route: impl Into<String>) -> Self {
        self.route = Some(route.into());
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n);
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str, route: Option<&str>) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
            && self.route.as_deref().is_none_or(|r| Some(r) == route)
    }
}

/// An installed fault.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveFault {
    /// Id for removal.
    pub id: u64,
    /// The rule; `times` counts down as it hits.
    pub rule: FaultRule,
    /// How many requests it has hit.
    pub hits: u64,
}

/// One request served (control API requests are not logged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Order of arrival, from 1.
    pub seq: u64,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// The raw query string (empty if none).
    pub query: String,
    /// The route name, if the path is a known route.
    pub route: Option<String>,
    /// Status sent; `None` when no response was sent (dropped connection, client went away).
    pub status: Option<u16>,
    /// When the request arrived.
    pub started: DateTime<Utc>,
    /// When the response was handed over (or the request given up).
    pub finished: DateTime<Utc>,
    /// Page size the client asked for (`page-size`, `$top`, `limit`, `per_page` …), if any.
    pub page_size: Option<u64>,
    /// The injected fault that hit it, if any.
    pub fault: Option<String>,
}

/// A force-sync request the simulator accepted (A1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForceSyncAction {
    /// The provider.
    pub provider: Provider,
    /// The device's sim id.
    pub device: u64,
    /// When.
    pub at: DateTime<Utc>,
}

/// Counters of a running simulator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimStats {
    /// Requests logged so far.
    pub requests: u64,
    /// Requests being served now.
    pub in_flight: usize,
    /// The most requests ever served at once.
    pub max_in_flight: usize,
}

/// Handle to a running simulator's state. Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct SimControl {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for SimControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimControl")
            .field("provider", &self.shared.provider)
            .finish_non_exhaustive()
    }
}

impl SimControl {
    /// The provider simulated.
    pub fn provider(&self) -> Provider {
        self.shared.provider
    }

    /// The scenario served now.
    pub fn scenario(&self) -> Scenario {
        self.shared.world().scenario.clone()
    }

    /// Replaces the scenario (validated first; on error nothing changes).
    pub fn replace_scenario(&self, scenario: Scenario) -> Result<(), SimError> {
        self.shared.update(|s| {
            *s = scenario;
            Ok(())
        })
    }

    /// Changes the scenario in place (validated after; on error nothing changes).
    pub fn update(&self, f: impl FnOnce(&mut Scenario)) -> Result<(), SimError> {
        self.shared.update(|s| {
            f(s);
            Ok(())
        })
    }

    /// Adds a group (its id must be new).
    pub fn add_group(&self, group: Group) -> Result<(), SimError> {
        self.shared.update(|s| {
            s.groups.push(group);
            Ok(())
        })
    }

    /// Removes a group.
    pub fn remove_group(&self, id: u64) -> Result<(), SimError> {
        self.shared.update(|s| {
            let before = s.groups.len();
            s.groups.retain(|g| g.id != id);
            if s.groups.len() == before {
                return Err(SimError::NoSuchGroup(id));
            }
            Ok(())
        })
    }

    /// Renames a group.
    pub fn rename_group(&self, id: u64, name: impl Into<String>) -> Result<(), SimError> {
        let name = name.into();
        self.shared.update(|s| {
            group_mut(s, id)?.name = name;
            Ok(())
        })
    }

    /// Sets a group's members.
    pub fn set_members(&self, id: u64, members: Vec<u64>) -> Result<(), SimError> {
        self.shared.update(|s| {
            group_mut(s, id)?.members = members;
            Ok(())
        })
    }

    /// Moves a device out of `from` (every group when `None`) into `to`.
    pub fn move_device(&self, device: u64, from: Option<u64>, to: u64) -> Result<(), SimError> {
        self.shared.update(|s| {
            group_mut(s, to)?;
            if let Some(f) = from {
                group_mut(s, f)?;
            }
            for g in &mut s.groups {
                if from.is_none_or(|f| f == g.id) {
                    g.members.retain(|m| *m != device);
                }
            }
            let g = group_mut(s, to)?;
            if !g.members.contains(&device) {
                g.members.push(device);
            }
            Ok(())
        })
    }

    /// Adds a device.
    pub fn add_device(&self, device: Device) -> Result<(), SimError> {
        self.shared.update(|s| {
            s.devices.push(device);
            Ok(())
        })
    }

    /// Removes a device (and its memberships).
    pub fn remove_device(&self, id: u64) -> Result<(), SimError> {
        self.shared.update(|s| {
            let before = s.devices.len();
            s.devices.retain(|d| d.id != id);
            if s.devices.len() == before {
                return Err(SimError::NoSuchDevice(id));
            }
            for g in &mut s.groups {
                g.members.retain(|m| *m != id);
            }
            Ok(())
        })
    }

    /// Installs a fault; returns its id.
    pub fn add_fault(&self, rule: FaultRule) -> u64 {
        let id = self.shared.next_fault.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ActiveFault { id, rule, hits: 0 });
        id
    }

    /// Removes one fault; false if there was none with that id.
    pub fn remove_fault(&self, id: u64) -> bool {
        let mut f = self.shared.faults.lock().unwrap_or_else(|e| e.into_inner());
        let before = f.len();
        f.retain(|a| a.id != id);
        f.len() != before
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The faults installed (exhausted ones are removed).
    pub fn faults(&self) -> Vec<ActiveFault> {
        self.shared
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Invalidates every OAuth token issued so far (Jamf, Intune): the next call with one gets
    /// 401, as when a token expires mid-run.
    pub fn expire_tokens(&self) {
        self.shared
            .tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// How many OAuth tokens were issued since start.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.tokens_issued.load(Ordering::Relaxed)
    }

    /// Every request served so far, in arrival order.
    pub fn requests(&self) -> Vec<RequestRecord> {
        let mut v = self
            .shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|r| r.seq);
        v
    }

    /// Empties the request log and resets the concurrency high-water mark.
    pub fn clear_requests(&self) {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.shared.max_in_flight.store(
            self.shared.in_flight.load(Ordering::SeqCst),
            Ordering::SeqCst,
        );
    }

    /// The most requests ever served at once (since start or [`Self::clear_requests`]).
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Counters.
    pub fn stats(&self) -> SimStats {
        SimStats {
            requests: self
                .shared
                .log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len() as u64,
            in_flight: self.shared.in_flight.load(Ordering::SeqCst),
            max_in_flight: self.max_in_flight(),
        }
    }

    /// Force-sync requests accepted so far.
    pub fn force_syncs(&self) -> Vec<ForceSyncAction> {
        self.shared
            .actions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn group_mut(s: &mut Scenario, id: u64) -> Result<&mut Group, SimError> {
    s.groups
        .iter_mut()
        .find(|g| g.id == id)
        .ok_or(SimError::NoSuchGroup(id))
}
