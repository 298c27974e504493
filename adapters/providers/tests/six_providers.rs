//! Must show (issue 6): one scenario, served by each of the six simulated providers, each
//! connected through `mdmsync_providers::connect` into its own Pro workspace by the core's
//! `SyncService` (credential test C1, metadata M1, the sync C3 triggers), ends in the same
//! groups everywhere: same names, same member serials (G2, G3, G4).

use mdmsim::{RunningSim, Scenario, SimOptions, Simulator};
use mdmsync_core::testkit::{ManualClock, SequentialIds, t0, uuid};
use mdmsync_core::{
    Actor, Capability, Command, ConnectionSettings, DeviceId, GroupSource, InMemoryEventStore,
    InMemoryVault, Plan, Provider, SyncResult, SyncService, WorkspaceId,
};
use mdmsync_http::{HttpConfig, RetryPolicy};
use mdmsync_providers::{ConnectOptions, built_providers, connect, parse_credentials};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Group name → member serials.
type Groups = BTreeMap<String, BTreeSet<String>>;

/// 80 devices in 9 groups. No Intune kiosk devices (they are never Entra group members, so
/// Intune would rightly differ) and unique group names (so G4 adds no provider suffix).
fn scenario() -> Scenario {
    let mut s = Scenario::generate(21, 80, 9, 260);
    for d in &mut s.devices {
        d.kiosk = false;
    }
    s
}

fn fast_http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(5),
        },
        use_env_proxy: false,
        ..HttpConfig::default()
    }
}

/// What the scenario itself says: every group with its members' serials.
fn scenario_groups(s: &Scenario) -> Groups {
    let serial: BTreeMap<u64, String> = s
        .devices
        .iter()
        .filter_map(|d| Some((d.id, d.serial_number.clone()?)))
        .collect();
    s.groups
        .iter()
        .map(|g| {
            (
                g.name.clone(),
                g.members.iter().map(|m| serial[m].clone()).collect(),
            )
        })
        .collect()
}

/// Connects a fresh Pro workspace to `sim` through the umbrella and returns its groups.
async fn sync_through(provider: Provider, sim: &RunningSim, scenario: &Scenario) -> Groups {
    let credentials = parse_credentials(provider, sim.credentials()).unwrap();
    let options = ConnectOptions {
        base_url: Some(sim.base_url()),
        login_url: sim.login_url(),
        extra_ca_pem: Vec::new(),
        http: Some(fast_http()),
    };
    let client = connect(provider, &credentials, &options).unwrap();
    assert_eq!(client.provider(), provider);

    let service = SyncService::new(
        InMemoryEventStore::new(),
        ManualClock::new(t0()),
        SequentialIds::default(),
    );
    let ws = WorkspaceId::from_uuid(uuid(0xC0DE));
    let operator = Actor::Operator("test".into());
    service
        .execute(
            ws,
            Command::CreateWorkspace {
                workspace_id: ws,
                name: format!("{} workspace", provider.display_name()),
                plan: Plan::Pro,
            },
            operator.clone(),
        )
        .await
        .unwrap();
    for d in &scenario.devices {
        service
            .execute(
                ws,
                Command::RegisterDevice {
                    device_id: DeviceId::from_uuid(uuid(0x1_0000 + u128::from(d.id))),
                    serial_number: d.serial_number.clone(),
                    name: None,
                },
                operator.clone(),
            )
            .await
            .unwrap();
    }
    let vault = InMemoryVault::default();
    let outcome = service
        .connect(
            ws,
            client.as_ref(),
            &vault,
            &credentials,
            ConnectionSettings {
                base_url: options.base_url.clone(),
                login_url: options.login_url.clone(),
            },
            operator,
        )
        .await
        .unwrap_or_else(|e| panic!("{provider:?}: {e}"));
    assert_eq!(outcome.check.group_sync, Capability::Yes, "{provider:?}");
    let metadata = outcome.metadata.unwrap();
    assert_eq!(
        metadata.refreshed,
        scenario.devices.len() as u64,
        "{provider:?}: every device found by serial (M1)"
    );
    let sync = outcome.sync.expect("C3: a provider change syncs at once");
    assert!(
        matches!(sync.result, SyncResult::Succeeded { .. }),
        "{provider:?}: {:?}",
        sync.result
    );

    let state = service.load(ws).await.unwrap().state;
    let serial_of = |id: &DeviceId| state.devices()[id].serial_number.clone().unwrap();
    state
        .groups()
        .values()
        .map(|g| {
            assert!(
                matches!(g.source, GroupSource::Synced { provider: p, .. } if p == provider),
                "{provider:?}: {g:?}"
            );
            (g.name.clone(), g.members.iter().map(serial_of).collect())
        })
        .collect()
}

#[tokio::test]
async fn g_one_scenario_from_every_provider_gives_the_same_groups() {
    let providers = built_providers();
    #[cfg(all(
        feature = "jamf",
        feature = "intune",
        feature = "iru",
        feature = "simplemdm",
        feature = "fleet",
        feature = "jumpcloud"
    ))]
    assert_eq!(providers, Provider::ALL, "the default build has all six");
    assert!(!providers.is_empty(), "build with at least one provider");

    let scenario = scenario();
    let want = scenario_groups(&scenario);
    assert_eq!(want.len(), 9);
    let mut results: Vec<(Provider, Groups)> = Vec::new();
    for p in providers {
        let sim = Simulator::start(SimOptions::new(p, scenario.clone()))
            .await
            .unwrap();
        results.push((p, sync_through(p, &sim, &scenario).await));
        sim.shutdown().await;
    }
    for (p, groups) in &results {
        assert_eq!(groups, &want, "{p:?} differs from the scenario");
    }
    // And so, pairwise, from each other.
    let (first, rest) = results.split_first().unwrap();
    for (p, groups) in rest {
        assert_eq!(groups, &first.1, "{p:?} vs {:?}", first.0);
    }
}
