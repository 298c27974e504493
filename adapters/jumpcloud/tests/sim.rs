//! The JumpCloud adapter against the simulator (`mdmsim`): multi-page snapshots, the
//! short-page trap (null associations), every E1 kind, G8 on the last page, P2 guards, M1/M6
//! look-ups both ways, A1 unsupported, C1 with and without `x-org-id`, C2.

use mdmsim::{Device, FaultKind, FaultRule, Group, RunningSim, Scenario, SimOptions, Simulator};
use mdmsync_core::{Capability, Credentials, ErrorKind, MdmClient, MdmError, Provider};
use mdmsync_http::{Auth, HttpClient, HttpConfig, PageEnd, RetryPolicy, endpoint};
use mdmsync_jumpcloud::{JumpCloudClient, JumpCloudConfig, PAGE_LIMIT};
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::time::Duration;

const P: Provider = Provider::JumpCloud;

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

fn client_with(
    sim: &RunningSim,
    creds: BTreeMap<String, String>,
    http: HttpConfig,
) -> JumpCloudClient {
    let config = JumpCloudConfig::from_credentials(&credentials(creds), Some(&sim.base_url()))
        .unwrap()
        .with_http(http);
    JumpCloudClient::new(config).unwrap()
}

fn client(sim: &RunningSim) -> JumpCloudClient {
    client_with(sim, sim.credentials(), fast_http())
}

/// 105 groups (two pages of groups), one of them ("Everyone", sim id 105) with 250 members
/// (three pages of members).
fn big() -> Scenario {
    let mut s = Scenario::generate(5, 300, 104, 1500);
    s.groups.push(Group {
        id: 105,
        name: "Everyone".into(),
        smart: false,
        members: (1..=250).collect(),
    });
    s
}

fn membership_path(group: u64) -> String {
    format!(
        "/api/v2/systemgroups/{}/membership",
        mdmsim::ids::jumpcloud_group_id(group)
    )
}

fn skips(sim: &RunningSim, path: &str) -> Vec<(String, Option<u16>)> {
    sim.control()
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| {
            let skip = r
                .query
                .split('&')
                .find_map(|kv| kv.strip_prefix("skip="))
                .unwrap_or("")
                .to_owned();
            (skip, r.status)
        })
        .collect()
}

#[tokio::test]
async fn p2_multi_page_snapshot_equals_the_scenario_at_limit_100() {
    let scenario = big();
    let sim = start(scenario.clone()).await;
    let snapshot = client(&sim).fetch_snapshot().await.unwrap();
    assert_eq!(
        snapshot.validate().unwrap(),
        scenario.expected_snapshot(P).validate().unwrap()
    );
    let log = sim.control().requests();
    assert!(
        log.iter()
            .all(|r| r.page_size == Some(u64::from(PAGE_LIMIT))),
        "every listing asks for limit=100"
    );
    let group_pages: Vec<_> = log
        .iter()
        .filter(|r| r.route.as_deref() == Some("jumpcloud.systemgroups"))
        .map(|r| r.query.clone())
        .collect();
    assert_eq!(
        group_pages,
        [
            "limit=100&skip=0",
            "limit=100&skip=100",
            "limit=100&skip=200"
        ]
    );
    // "Everyone": 100 + 100 + 50, then the empty page that ends the listing.
    let everyone = skips(&sim, &membership_path(105));
    assert_eq!(
        everyone,
        [
            ("0".to_owned(), Some(200)),
            ("100".to_owned(), Some(200)),
            ("200".to_owned(), Some(200)),
            ("300".to_owned(), Some(200)),
        ]
    );
    assert!(sim.control().max_in_flight() <= 4, "P5: at most 4 at once");
}

#[tokio::test]
async fn p2_the_short_page_trap_does_not_truncate_a_group() {
    let mut scenario = big();
    scenario.options.jumpcloud_null_associations = true;
    let sim = start(scenario.clone()).await;

    // A client that stops on a short page gets 99 of the 250 members: the first page lost its
    // null association after paging.
    let http = HttpClient::new(P, fast_http()).unwrap();
    let auth = Auth::x_api_key(SecretString::from(sim.credentials()["api_key"].clone()));
    let url = endpoint(
        &mdmsync_http::Url::parse(&sim.base_url()).unwrap(),
        &membership_path(105).replacen("/api/", "", 1),
    );
    #[derive(serde::Deserialize)]
    struct M {
        id: String,
    }
    let naive: Vec<M> = http
        .pager("naive")
        .offset(
            PAGE_LIMIT,
            PageEnd::ShortPage,
            |skip| {
                let (http, auth, url) = (&http, &auth, url.clone());
                async move {
                    http.get("naive", url)
                        .query(&[("limit", "100"), ("skip", &skip.to_string())])
                        .auth(auth)
                        .send_json::<Vec<M>>()
                        .await
                }
            },
            |m| m.id.clone(),
        )
        .await
        .unwrap();
    assert_eq!(naive.len(), 99, "the simulator reproduces the trap");

    // The adapter reads on to the empty page and gets all 250.
    let snapshot = client(&sim).fetch_snapshot().await.unwrap();
    assert_eq!(
        snapshot.validate().unwrap(),
        scenario.expected_snapshot(P).validate().unwrap()
    );
    let everyone = snapshot
        .groups
        .iter()
        .find(|g| g.name == "Everyone")
        .unwrap();
    assert_eq!(everyone.members.len(), 250);
}

async fn snapshot_error(sim: &RunningSim, client: &JumpCloudClient, fault: FaultRule) -> MdmError {
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
        for route in ["jumpcloud.systemgroups", "jumpcloud.membership"] {
            let err = snapshot_error(&sim, &c, FaultRule::new(fault.clone()).route(route)).await;
            assert_eq!(err.kind(), Some(kind), "{fault:?} on {route}: {err}");
            assert!(err.to_string().contains("JumpCloud: list"), "{err}");
        }
    }
    sim.control().clear_requests();
    let err = snapshot_error(
        &sim,
        &c,
        FaultRule::new(FaultKind::ServiceUnavailable {
            retry_after_secs: None,
        })
        .route("jumpcloud.systemgroups"),
    )
    .await;
    assert!(err.to_string().contains("after 3 attempts"), "{err}");
    // Count the group listings only: membership requests of the previous case (fetched
    // concurrently) may still finish after `clear_requests`.
    let listings = sim
        .control()
        .requests()
        .iter()
        .filter(|r| r.path == "/api/v2/systemgroups")
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
        .route("jumpcloud.systemgroups")
        .times(1),
    );
    let snapshot = client(&sim).fetch_snapshot().await.unwrap();
    assert_eq!(
        snapshot.validate().unwrap(),
        scenario.expected_snapshot(P).validate().unwrap()
    );
    let first: Vec<_> = ctl
        .requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some("jumpcloud.systemgroups"))
        .take(2)
        .collect();
    assert_eq!(first[0].status, Some(429));
    assert_eq!(first[1].status, Some(200));
    assert_eq!(first[0].query, first[1].query, "the same page again");
    let waited = first[1].started - first[0].finished;
    assert!(waited >= chrono::TimeDelta::milliseconds(900), "{waited:?}");
}

#[tokio::test]
async fn e1_a_closed_port_is_connection_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = JumpCloudConfig::new(SecretString::from("k"))
        .with_base_url(&format!("http://{addr}/api"))
        .unwrap()
        .with_http(fast_http());
    let err = JumpCloudClient::new(config)
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
    let sim = start(big()).await;
    let ctl = sim.control();
    let path = membership_path(105);
    // skip=0 and skip=100 pass; skip=200 (the last page with members) fails after retries.
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .path(path.clone())
            .times(2),
    );
    ctl.add_fault(
        FaultRule::new(FaultKind::ServiceUnavailable {
            retry_after_secs: None,
        })
        .path(path.clone()),
    );
    let err = client(&sim).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    let seen = skips(&sim, &path);
    assert_eq!(
        seen,
        [
            ("0".to_owned(), Some(200)),
            ("100".to_owned(), Some(200)),
            ("200".to_owned(), Some(503)),
            ("200".to_owned(), Some(503)),
            ("200".to_owned(), Some(503)),
        ]
    );
    // Even the empty page that only confirms the end is part of the snapshot.
    ctl.clear_faults();
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .path(path.clone())
            .times(3),
    );
    ctl.add_fault(FaultRule::new(FaultKind::InternalServerError).path(path.clone()));
    let err = client(&sim).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("HTTP 500"), "{err}");
}

#[tokio::test]
async fn p2_a_pagination_loop_or_repeated_systems_fail_the_snapshot() {
    let sim = start(big()).await;
    let c = client(&sim);
    for fault in [FaultKind::PaginationLoop, FaultKind::DuplicateItems] {
        for route in ["jumpcloud.systemgroups", "jumpcloud.membership"] {
            let err = snapshot_error(&sim, &c, FaultRule::new(fault.clone()).route(route)).await;
            assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{fault:?}: {err}");
            assert!(err.to_string().contains("repeats id"), "{err}");
        }
    }
}

/// The sample plus a second system with serial C02SIM000002 (M6) and one without serial.
fn with_duplicate() -> Scenario {
    let mut s = Scenario::sample();
    s.devices.push(Device {
        id: 6,
        serial_number: Some("C02SIM000002".into()),
        device_name: "Alan's old MacBook".into(),
        user: s.devices[0].user.clone(),
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
async fn m1_m6_lookup_by_serial_finds_every_record_with_its_primary_user() {
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
    let filters: Vec<_> = log
        .iter()
        .filter(|r| r.route.as_deref() == Some("jumpcloud.systems"))
        .collect();
    assert_eq!(filters.len(), 4, "one filtered listing per serial");
    assert!(
        filters
            .iter()
            .all(|r| r.query.contains("filter=serialNumber%3A%24eq%3A"))
    );
    // Ada is the primary user of two systems: read once.
    assert_eq!(
        log.iter()
            .filter(|r| r.route.as_deref() == Some("jumpcloud.systemuser"))
            .count(),
        2
    );
}

#[tokio::test]
async fn m1_many_serials_are_found_by_one_sweep() {
    let mut scenario = Scenario::generate(5, 250, 2, 100);
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
        .filter(|r| r.route.as_deref() == Some("jumpcloud.systems"))
        .collect();
    assert_eq!(
        sweeps.len(),
        3,
        "250 systems in pages of 100, ended by totalCount"
    );
    assert!(sweeps.iter().all(|r| !r.query.contains("filter=")));
}

#[tokio::test]
async fn a1_force_sync_is_not_supported_and_sends_nothing() {
    let sim = start(Scenario::sample()).await;
    let c = client(&sim);
    let id = mdmsim::ids::jumpcloud_system_id(1);
    let err = c.force_sync(&id.as_str().into()).await.unwrap_err();
    assert_eq!(err.to_string(), "force sync is not supported by JumpCloud");
    assert!(sim.control().requests().is_empty());
    assert!(sim.control().force_syncs().is_empty());
    assert_eq!(
        c.console_url(&id.as_str().into()),
        Some(format!("{}/#/devices/{id}/details", sim.origin()))
    );
}

#[tokio::test]
async fn c1_credential_test_reports_capabilities_and_kinds() {
    let sim = start(Scenario::sample()).await;
    let ctl = sim.control();
    let check = client(&sim).validate_credentials().await.unwrap();
    assert_eq!(check.group_sync, Capability::Yes);
    assert_eq!(check.metadata, Capability::Yes);
    assert_eq!(
        check.force_sync,
        Capability::Unsupported,
        "A1: JumpCloud has no force sync"
    );

    let mut bad = sim.credentials();
    bad.insert("api_key".into(), "wrong-api-key-value".into());
    let err = client_with(&sim, bad, fast_http())
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(!err.to_string().contains("wrong-api-key-value"), "{err}");

    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("jumpcloud.systemgroups"));
    let err = client(&sim).validate_credentials().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    ctl.clear_faults();

    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("jumpcloud.systems"));
    let check = client(&sim).validate_credentials().await.unwrap();
    assert_eq!(check.metadata, Capability::No);
}

#[tokio::test]
async fn c1_multi_tenant_admins_need_the_org_id() {
    let mut scenario = Scenario::sample();
    scenario.credentials.org_id = Some("5c0a1b2c3d4e5f6a7b8c9d0e".into());
    let sim = start(scenario.clone()).await;
    assert!(sim.credentials().contains_key("org_id"));
    client(&sim).validate_credentials().await.unwrap();
    let snapshot = client(&sim).fetch_snapshot().await.unwrap();
    assert_eq!(
        snapshot.validate().unwrap(),
        scenario.expected_snapshot(P).validate().unwrap()
    );
    let mut without = sim.credentials();
    without.remove("org_id");
    let err = client_with(&sim, without, fast_http())
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(err.to_string().contains("multi-tenant"), "{err}");
}

#[tokio::test]
async fn c2_no_secret_in_any_url() {
    let sim = start(with_duplicate()).await;
    let c = client(&sim);
    c.validate_credentials().await.unwrap();
    c.fetch_snapshot().await.unwrap();
    c.lookup_devices(&["C02SIM000001".into()]).await.unwrap();
    let key = &sim.credentials()["api_key"];
    let log = sim.control().requests();
    assert!(log.len() > 5);
    for r in log {
        assert!(
            !r.path.contains(key.as_str()) && !r.query.contains(key.as_str()),
            "{r:?}"
        );
    }
}
