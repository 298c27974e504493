//! The Fleet adapter against the simulator (`mdmsim`): snapshots over several pages, every E1
//! kind, G8 on the last page, P2 guards, M1/M6 look-ups both ways, A1 refetch, C1, C2.

use mdmsim::{Device, FaultKind, FaultRule, RunningSim, Scenario, SimOptions, Simulator};
use mdmsync_core::{Capability, Credentials, ErrorKind, MdmClient, MdmError, Provider};
use mdmsync_fleet::{DEFAULT_PER_PAGE, FleetClient, FleetConfig};
use mdmsync_http::{HttpConfig, RetryPolicy};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::time::Duration;

const P: Provider = Provider::Fleet;

/// Fast retries, short timeouts, no proxy from the environment.
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
        ..HttpConfig::for_provider(P)
    }
}

async fn start(scenario: Scenario) -> RunningSim {
    Simulator::start(SimOptions::new(P, scenario))
        .await
        .unwrap()
}

fn credentials(map: BTreeMap<String, String>) -> Credentials {
    Credentials::new(P, map.into_iter().map(|(k, v)| (k, SecretString::from(v)))).unwrap()
}

fn client_with(sim: &RunningSim, creds: BTreeMap<String, String>, http: HttpConfig) -> FleetClient {
    let config = FleetConfig::from_credentials(&credentials(creds), Some(&sim.base_url()))
        .unwrap()
        .with_http(http);
    FleetClient::new(config).unwrap()
}

fn client(sim: &RunningSim) -> FleetClient {
    client_with(sim, sim.credentials(), fast_http())
}

/// 1,200 hosts in 4 labels of ~650: two pages of 500 per label.
fn big() -> Scenario {
    Scenario::generate(11, 1200, 4, 2600)
}

fn label_path(scenario: &Scenario, group: usize) -> String {
    let id = mdmsim::ids::fleet_label_id(scenario.groups[group].id);
    format!("/api/v1/fleet/labels/{id}/hosts")
}

#[tokio::test]
async fn p2_multi_page_snapshot_equals_the_scenario_at_the_largest_page_size() {
    let scenario = big();
    assert!(scenario.groups.iter().all(|g| g.members.len() > 500));
    let sim = start(scenario.clone()).await;
    let snapshot = client(&sim).fetch_snapshot().await.unwrap();
    assert_eq!(
        snapshot.validate().unwrap(),
        scenario.expected_snapshot(P).validate().unwrap()
    );
    let log = sim.control().requests();
    let member_pages: Vec<_> = log
        .iter()
        .filter(|r| r.route.as_deref() == Some("fleet.label_hosts"))
        .collect();
    // Two pages per label (the second one short), never a builtin label (ids 1–6).
    assert_eq!(member_pages.len(), 8, "{member_pages:#?}");
    for r in &member_pages {
        assert_eq!(r.page_size, Some(u64::from(DEFAULT_PER_PAGE)), "{r:?}");
        assert!(r.query.contains("order_key=id"), "{r:?}");
        let label: u64 = r.path.split('/').nth(5).unwrap().parse().unwrap();
        assert!(label > 100, "builtin label {label} was fetched");
    }
    assert_eq!(
        member_pages
            .iter()
            .filter(|r| r.query.contains("page=1&"))
            .count(),
        4
    );
}

#[tokio::test]
async fn builtin_labels_are_not_synced_and_kinds_follow_membership_type() {
    let scenario = Scenario::sample();
    let sim = start(scenario.clone()).await;
    let by_id = |mut s: mdmsync_core::Snapshot| {
        s.groups
            .sort_by_key(|g| g.id.as_str().parse::<u64>().unwrap());
        s.groups
    };
    let got = by_id(client(&sim).fetch_snapshot().await.unwrap());
    // Kinds included: "All Laptops" is a dynamic label (smart), the others manual (static).
    assert_eq!(got, by_id(scenario.expected_snapshot(P)));
    assert!(
        got.iter()
            .all(|g| g.name != "All Hosts" && g.name != "macOS")
    );
}

async fn snapshot_error(sim: &RunningSim, client: &FleetClient, fault: FaultRule) -> MdmError {
    let ctl = sim.control();
    ctl.clear_faults();
    ctl.add_fault(fault);
    let err = client.fetch_snapshot().await.unwrap_err();
    ctl.clear_faults();
    err
}

#[tokio::test]
async fn e1_every_failure_has_its_kind() {
    let sim = start(Scenario::sample()).await;
    let c = client(&sim);
    let cases = [
        (FaultKind::Unauthorized, ErrorKind::Unauthorized),
        (FaultKind::Forbidden, ErrorKind::Forbidden),
        (FaultKind::NotFound, ErrorKind::NotFound),
        (FaultKind::InternalServerError, ErrorKind::ServerError),
        (
            FaultKind::ServiceUnavailable {
                retry_after_secs: None,
            },
            ErrorKind::ServerError,
        ),
        (FaultKind::MalformedJson, ErrorKind::ServerError),
        (FaultKind::TruncatedJson, ErrorKind::ServerError),
        (FaultKind::DropConnection, ErrorKind::ConnectionFailed),
    ];
    for (fault, kind) in cases {
        for route in ["fleet.labels", "fleet.label_hosts"] {
            let err = snapshot_error(&sim, &c, FaultRule::new(fault.clone()).route(route)).await;
            assert_eq!(err.kind(), Some(kind), "{fault:?} on {route}: {err}");
            assert!(err.to_string().contains("Fleet: list"), "{err}");
        }
    }
    // 503 is retried: three attempts (the test config's bound), then ServerError.
    sim.control().clear_requests();
    let err = snapshot_error(
        &sim,
        &c,
        FaultRule::new(FaultKind::ServiceUnavailable {
            retry_after_secs: None,
        })
        .route("fleet.labels"),
    )
    .await;
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    // Count the label listings only: label-host requests of the previous case (fetched
    // concurrently) may still finish after `clear_requests`.
    let listings = sim
        .control()
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v1/fleet/labels")
        .count();
    assert_eq!(listings, 3, "E2: bounded attempts");
}

#[tokio::test]
async fn e2_429_retry_after_is_honoured_then_the_snapshot_succeeds() {
    let scenario = Scenario::sample();
    let sim = start(scenario.clone()).await;
    let ctl = sim.control();
    ctl.add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 1,
        })
        .route("fleet.labels")
        .times(1),
    );
    let snapshot = client(&sim).fetch_snapshot().await.unwrap();
    assert_eq!(
        snapshot.validate().unwrap(),
        scenario.expected_snapshot(P).validate().unwrap()
    );
    let labels: Vec<_> = ctl
        .requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some("fleet.labels"))
        .collect();
    assert_eq!(labels.len(), 2);
    assert_eq!(labels[0].status, Some(429));
    assert_eq!(labels[1].status, Some(200));
    // The retry waited for Retry-After (1 s), not the test config's 5–20 ms backoff.
    let waited = labels[1].started - labels[0].finished;
    assert!(waited >= chrono::TimeDelta::milliseconds(900), "{waited:?}");
}

#[tokio::test]
async fn e1_a_closed_port_is_connection_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = FleetConfig::new(&format!("http://{addr}"), SecretString::from("t"))
        .unwrap()
        .with_http(fast_http());
    let err = FleetClient::new(config)
        .unwrap()
        .fetch_snapshot()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
}

#[tokio::test]
async fn e3_tls_is_verified_and_an_extra_ca_makes_it_work() {
    let scenario = Scenario::sample();
    let sim = Simulator::start(SimOptions::new(P, scenario.clone()).with_tls())
        .await
        .unwrap();
    let err = client(&sim).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
    let http = HttpConfig {
        extra_ca_pem: vec![sim.ca_cert_pem().unwrap()],
        ..fast_http()
    };
    let snapshot = client_with(&sim, sim.credentials(), http)
        .fetch_snapshot()
        .await
        .unwrap();
    assert_eq!(
        snapshot.validate().unwrap(),
        scenario.expected_snapshot(P).validate().unwrap()
    );
}

#[tokio::test]
async fn g8_a_fault_on_the_last_page_fails_the_whole_snapshot() {
    let scenario = big();
    let sim = start(scenario.clone()).await;
    let ctl = sim.control();
    let path = label_path(&scenario, 3);
    // Page 0 of the last label passes; page 1 (the short, last one) fails.
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .path(path.clone())
            .times(1),
    );
    ctl.add_fault(
        FaultRule::new(FaultKind::ServiceUnavailable {
            retry_after_secs: None,
        })
        .path(path.clone()),
    );
    let err = client(&sim).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    let failed: Vec<_> = ctl
        .requests()
        .into_iter()
        .filter(|r| r.path == path && r.status == Some(503))
        .collect();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|r| r.query.starts_with("page=1&")),
        "{failed:#?}"
    );
}

#[tokio::test]
async fn p2_a_pagination_loop_or_repeated_hosts_fail_the_snapshot() {
    let sim = start(big()).await;
    let c = client(&sim);
    for fault in [FaultKind::PaginationLoop, FaultKind::DuplicateItems] {
        let err = snapshot_error(
            &sim,
            &c,
            FaultRule::new(fault.clone()).route("fleet.label_hosts"),
        )
        .await;
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{fault:?}: {err}");
        assert!(err.to_string().contains("repeats id"), "{err}");
    }
}

/// The sample plus a second host with serial C02SIM000002 (M6) and a device without serial.
fn with_duplicate() -> Scenario {
    let mut s = Scenario::sample();
    s.devices.push(Device {
        id: 6,
        serial_number: Some("C02SIM000002".into()),
        device_name: "Alan's old MacBook".into(),
        user: None,
        last_seen: Some(chrono::DateTime::UNIX_EPOCH),
        kiosk: false,
    });
    s.devices.push(Device {
        id: 7,
        serial_number: None,
        device_name: "BYOD phone".into(),
        user: None,
        last_seen: None,
        kiosk: false,
    });
    s
}

fn sorted(mut v: Vec<mdmsync_core::MdmDeviceRecord>) -> Vec<mdmsync_core::MdmDeviceRecord> {
    v.sort_by(|a, b| a.mdm_device_id.cmp(&b.mdm_device_id));
    v
}

#[tokio::test]
async fn m1_m6_lookup_by_serial_finds_every_record_with_its_user() {
    let scenario = with_duplicate();
    let sim = start(scenario.clone()).await;
    let serials: Vec<String> = ["C02SIM000001", "C02SIM000002", "C02SIM000004", "NOPE12345"]
        .map(String::from)
        .to_vec();
    let found = client(&sim).lookup_devices(&serials).await.unwrap();
    for s in &serials {
        assert_eq!(
            sorted(found[s].clone()),
            sorted(scenario.expected_records(P, s)),
            "{s}"
        );
    }
    assert_eq!(found["C02SIM000002"].len(), 2, "duplicate serial (M6)");
    assert!(found["NOPE12345"].is_empty());
    let log = sim.control().requests();
    assert!(
        log.iter()
            .all(|r| r.route.as_deref() != Some("fleet.label_hosts"))
    );
    assert_eq!(
        log.iter()
            .filter(|r| r.route.as_deref() == Some("fleet.hosts"))
            .count(),
        4,
        "one search per serial"
    );
}

#[tokio::test]
async fn m1_many_serials_are_found_by_one_sweep() {
    let mut scenario = Scenario::generate(5, 700, 2, 100);
    let dup = scenario.devices[10].serial_number.clone();
    scenario.devices[20].serial_number = dup;
    let sim = start(scenario.clone()).await;
    let serials: Vec<String> = scenario
        .devices
        .iter()
        .take(40)
        .filter_map(|d| d.serial_number.clone())
        .chain(["UNKNOWN-SERIAL".to_owned()])
        .collect();
    let found = client(&sim).lookup_devices(&serials).await.unwrap();
    for s in &serials {
        assert_eq!(
            sorted(found[s].clone()),
            sorted(scenario.expected_records(P, s)),
            "{s}"
        );
    }
    let sweeps: Vec<_> = sim
        .control()
        .requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some("fleet.hosts"))
        .collect();
    assert_eq!(sweeps.len(), 2, "700 hosts in pages of 500");
    assert!(sweeps.iter().all(|r| !r.query.contains("query=")));
}

#[tokio::test]
async fn a1_force_sync_is_a_refetch_of_the_host() {
    let sim = start(Scenario::sample()).await;
    let c = client(&sim);
    c.force_sync(&"3".into()).await.unwrap();
    let syncs = sim.control().force_syncs();
    assert_eq!(syncs.len(), 1);
    assert_eq!((syncs[0].provider, syncs[0].device), (P, 3));
    let err = c.force_sync(&"999".into()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    assert_eq!(
        c.console_url(&"3".into()),
        Some(format!("{}/hosts/3", sim.origin()))
    );
}

#[tokio::test]
async fn c1_credential_test_reports_capabilities_and_kinds() {
    let sim = start(Scenario::sample()).await;
    let ctl = sim.control();
    let check = client(&sim).validate_credentials().await.unwrap();
    assert_eq!(check.group_sync, Capability::Yes);
    assert_eq!(check.metadata, Capability::Yes);
    assert_eq!(check.force_sync, Capability::Unknown);

    let mut bad = sim.credentials();
    bad.insert("api_token".into(), "wrong-token-value".into());
    let err = client_with(&sim, bad, fast_http())
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(!err.to_string().contains("wrong-token-value"), "{err}");

    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("fleet.labels"));
    let err = client(&sim).validate_credentials().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    ctl.clear_faults();

    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("fleet.hosts"));
    let check = client(&sim).validate_credentials().await.unwrap();
    assert_eq!(check.group_sync, Capability::Yes);
    assert_eq!(check.metadata, Capability::No);
}

#[tokio::test]
async fn c2_no_secret_in_any_url() {
    let scenario = with_duplicate();
    let sim = start(scenario).await;
    let c = client(&sim);
    c.validate_credentials().await.unwrap();
    c.fetch_snapshot().await.unwrap();
    c.lookup_devices(&["C02SIM000001".into()]).await.unwrap();
    c.force_sync(&"1".into()).await.unwrap();
    let token = &sim.credentials()["api_token"];
    let log = sim.control().requests();
    assert!(log.len() > 5);
    for r in log {
        assert!(
            !r.path.contains(token.as_str()) && !r.query.contains(token.as_str()),
            "{r:?}"
        );
    }
}
