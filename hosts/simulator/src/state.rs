//! Shared state of a running simulator, and the indexed view of its scenario.

use crate::SimError;
use crate::control::{ActiveFault, FaultKind, ForceSyncAction, RequestRecord};
use crate::ids;
use crate::scenario::{Device, Group, Scenario};
use mdmsync_core::Provider;
use rand::Rng;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The scenario, indexed for one provider. Immutable; replaced whole on every change.
pub(crate) struct World {
    pub scenario: Scenario,
    /// Devices in sim id order.
    pub devices: Vec<Device>,
    /// Groups in sim id order.
    pub groups: Vec<Group>,
    /// Per group: member device positions, ascending (= sim id order), deduplicated.
    pub members: Vec<Vec<usize>>,
    /// Per device: positions of its groups.
    pub groups_of: Vec<Vec<usize>>,
    /// Provider id forms of devices → position.
    pub device_by_key: HashMap<String, usize>,
    /// Provider id forms of groups → position.
    pub group_by_key: HashMap<String, usize>,
    /// Provider user id → a device with that user.
    pub users: HashMap<String, usize>,
}

impl World {
    pub fn build(scenario: Scenario, provider: Provider) -> Self {
        let mut devices = scenario.devices.clone();
        devices.sort_by_key(|d| d.id);
        let mut groups = scenario.groups.clone();
        groups.sort_by_key(|g| g.id);
        let pos: HashMap<u64, usize> = devices.iter().enumerate().map(|(i, d)| (d.id, i)).collect();
        let mut groups_of = vec![Vec::new(); devices.len()];
        let mut members = Vec::with_capacity(groups.len());
        for (gi, g) in groups.iter().enumerate() {
            let mut m: Vec<usize> = g
                .members
                .iter()
                .filter_map(|id| pos.get(id).copied())
                .collect();
            m.sort_unstable();
            m.dedup();
            for &d in &m {
                groups_of[d].push(gi);
            }
            members.push(m);
        }
        let mut device_by_key = HashMap::with_capacity(devices.len() * 2);
        let mut users = HashMap::new();
        for (i, d) in devices.iter().enumerate() {
            device_by_key.insert(ids::device_id(provider, d.id), i);
            match provider {
                Provider::Jamf => {
                    device_by_key.insert(ids::jamf_management_id(d.id), i);
                }
                Provider::Fleet => {
                    device_by_key.insert(ids::fleet_host_uuid(d.id), i);
                }
                _ => {}
            }
            if let Some(uid) = d.user.as_ref().and_then(|u| ids::user_id(provider, &u.id)) {
                users.entry(uid).or_insert(i);
            }
        }
        let group_by_key = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (ids::group_id(provider, g.id), i))
            .collect();
        World {
            scenario,
            devices,
            groups,
            members,
            groups_of,
            device_by_key,
            group_by_key,
            users,
        }
    }

    pub fn device(&self, key: &str) -> Option<&Device> {
        self.device_by_key.get(key).map(|&i| &self.devices[i])
    }

    pub fn group(&self, key: &str) -> Option<usize> {
        self.group_by_key.get(key).copied()
    }
}

pub(crate) struct Shared {
    pub provider: Provider,
    world: RwLock<Arc<World>>,
    update_lock: Mutex<()>,
    pub faults: Mutex<Vec<ActiveFault>>,
    pub next_fault: AtomicU64,
    pub log: Mutex<Vec<RequestRecord>>,
    pub seq: AtomicU64,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub tokens: Mutex<HashMap<String, Instant>>,
    pub tokens_issued: AtomicU64,
    pub actions: Mutex<Vec<ForceSyncAction>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(provider: Provider, scenario: Scenario) -> Result<Self, SimError> {
        scenario.validate()?;
        Ok(Self {
            provider,
            world: RwLock::new(Arc::new(World::build(scenario, provider))),
            update_lock: Mutex::new(()),
            faults: Mutex::new(Vec::new()),
            next_fault: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            tokens: Mutex::new(HashMap::new()),
            tokens_issued: AtomicU64::new(0),
            actions: Mutex::new(Vec::new()),
        })
    }

    pub fn world(&self) -> Arc<World> {
        self.world.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn update(
        &self,
        f: impl FnOnce(&mut Scenario) -> Result<(), SimError>,
    ) -> Result<(), SimError> {
        let _g = lock(&self.update_lock);
        let mut s = self.world().scenario.clone();
        f(&mut s)?;
        s.validate()?;
        let w = Arc::new(World::build(s, self.provider));
        *self.world.write().unwrap_or_else(|e| e.into_inner()) = w;
        Ok(())
    }

    /// The first installed fault matching the request, counted down; exhausted faults go.
    pub fn take_fault(
        &self,
        method: &str,
        path: &str,
        route: Option<&str>,
        continuation: bool,
    ) -> Option<FaultKind> {
        let mut faults = lock(&self.faults);
        let i = faults.iter().position(|f| {
            f.rule.matches(method, path, route)
                && (continuation || !f.rule.kind.continuation_only())
                && f.rule.times.is_none_or(|t| t > 0)
        })?;
        let f = &mut faults[i];
        f.hits += 1;
        let kind = f.rule.kind.clone();
        if let Some(t) = &mut f.rule.times {
            *t -= 1;
            if *t == 0 {
                faults.remove(i);
            }
        }
        Some(kind)
    }

    pub fn issue_token(&self, lifetime: u64) -> String {
        let mut rng = rand::rng();
        let body: String = (0..40)
            .map(|_| format!("{:x}", rng.random_range(0..16u8)))
            .collect();
        let token = format!("eyJhbGciOiJub25lIn0.eyJzaW0iOnRydWV9.{body}");
        let now = Instant::now();
        let mut t = lock(&self.tokens);
        t.retain(|_, exp| *exp > now);
        t.insert(token.clone(), now + Duration::from_secs(lifetime));
        self.tokens_issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        token
    }

    pub fn token_valid(&self, token: &str) -> bool {
        lock(&self.tokens)
            .get(token)
            .is_some_and(|exp| *exp > Instant::now())
    }

    pub fn record_action(&self, device: u64) {
        lock(&self.actions).push(ForceSyncAction {
            provider: self.provider,
            device,
            at: chrono::Utc::now(),
        });
    }

    pub fn push_log(&self, r: RequestRecord) {
        lock(&self.log).push(r);
    }
}
