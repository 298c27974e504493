//! The SimpleMDM adapter against the simulator (`mdmsim`): complete multi-page snapshots,
//! every E1 kind, G8 (a failed last page fails everything), pagination guards, look-ups with
//! duplicate serials and search noise, refresh, the credential test, the request budget, and
//! no secret in a URL.

use mdmsim::{FaultKind, FaultRule, RunningSim, Scenario, SimControl, SimOptions, Simulator};
use mdmsync_core::{
    Capability, Credentials, ErrorKind, MdmClient, MdmDeviceRecord, MdmError, Provider, Snapshot,
};
use mdmsync_http::{HttpConfig, RateLimit, RetryPolicy};
use mdmsync_simplemdm::{LookupStrategy, SimpleMdmClient, SimpleMdmConfig};
use secrecy::SecretString;
use std::time::Duration;

const P: Provider = Provider::SimpleMdm;

/// Fast retries, no proxy from the environment, no request budget (tests stay fast).
fn fast_http() -> HttpConfig {
    HttpConfig {
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_retry_after: Duration::from_secs(10),
        },
        use_env_proxy: false,
        rate_limit: None,
        ..SimpleMdmConfig::default_http()
    }
}

fn credentials(sim: &RunningSim) -> Credentials {
    Credentials::new(
        P,
        sim.credentials()
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v))),
    )
    .unwrap()
}

fn config(sim: &RunningSim) -> SimpleMdmConfig {
    SimpleMdmConfig::from_credentials(&credentials(sim), Some(&sim.base_url()))
        .unwrap()
        .with_http(fast_http())
}

fn client(sim: &RunningSim) -> SimpleMdmClient {
    SimpleMdmClient::new(config(sim)).unwrap()
}

async fn start(scenario: Scenario) -> RunningSim {
    Simulator::start(SimOptions::new(P, scenario))
        .await
        .unwrap()
}

/// 250 devices, 230 groups: three pages of groups (and of devices) at 100.
fn big_scenario() -> Scenario {
    Scenario::generate(21, 250, 230, 900)
}

fn assert_same(got: &Snapshot, want: &Snapshot) {
    assert_eq!(got.provider, P);
    assert_eq!(got.validate().unwrap(), want.validate().unwrap());
}

fn routed(ctl: &SimControl, route: &str) -> Vec<mdmsim::RequestRecord> {
    ctl.requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some(route))
        .collect()
}

fn param<'a>(r: &'a mdmsim::RequestRecord, key: &str) -> Option<&'a str> {
    r.query
        .split('&')
        .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
}

/// C2: the API key never appears in a path or query string.
fn assert_no_secret_in_urls(sim: &RunningSim) {
    let key = sim.credentials()["api_key"].clone();
    let requests = sim.control().requests();
    assert!(!requests.is_empty());
    for r in requests {
        assert!(!r.path.contains(&key) && !r.query.contains(&key), "{r:?}");
    }
}

fn kind(r: Result<impl std::fmt::Debug, MdmError>) -> ErrorKind {
    r.unwrap_err().kind().unwrap()
}

#[tokio::test]
async fn p2_snapshot_of_several_pages_equals_the_scenario_with_limit_100_always_sent() {
    let sim = start(big_scenario()).await;
    let ctl = sim.control();
    let got = client(&sim).fetch_snapshot().await.unwrap();
    assert_same(&got, &ctl.scenario().expected_snapshot(P));
    assert_eq!(got.groups.len(), 230);
    let pages = routed(&ctl, "simplemdm.assignment_groups");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages.iter().all(|r| r.page_size == Some(100)),
        "the default is 10: limit=100 must always be sent"
    );
    let cursors: Vec<Option<&str>> = pages.iter().map(|r| param(r, "starting_after")).collect();
    assert_eq!(
        cursors,
        [None, Some("100"), Some("200")],
        "the cursor is the last id"
    );
    assert!(
        routed(&ctl, "simplemdm.devices").is_empty(),
        "members are embedded: no device sweep without legacy device groups"
    );
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn e1_each_failure_has_its_kind_and_names_the_operation() {
    let sim = start(Scenario::generate(3, 20, 4, 30)).await;
    let ctl = sim.control();
    let client = client(&sim);
    let cases = [
        (FaultKind::Unauthorized, ErrorKind::Unauthorized, 1),
        (FaultKind::Forbidden, ErrorKind::Forbidden, 1),
        (FaultKind::NotFound, ErrorKind::NotFound, 1),
        (FaultKind::InternalServerError, ErrorKind::ServerError, 1),
        (
            FaultKind::ServiceUnavailable {
                retry_after_secs: None,
            },
            ErrorKind::ServerError,
            3,
        ),
        (
            FaultKind::Status {
                status: 504,
                retry_after_secs: None,
            },
            ErrorKind::ServerError,
            3,
        ),
        (FaultKind::MalformedJson, ErrorKind::ServerError, 1),
        (FaultKind::TruncatedJson, ErrorKind::ServerError, 1),
        (FaultKind::DropConnection, ErrorKind::ConnectionFailed, 3),
    ];
    for (fault, want, attempts) in cases {
        ctl.clear_requests();
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route("simplemdm.assignment_groups"));
        let err = client.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(want), "{fault:?}: {err}");
        assert!(
            err.to_string()
                .contains("SimpleMDM: list assignment groups failed"),
            "{err}"
        );
        assert_eq!(
            routed(&ctl, "simplemdm.assignment_groups").len(),
            attempts,
            "{fault:?}"
        );
    }
    // SimpleMDM's error body `{"errors":[{"title"}]}` is quoted.
    ctl.add_fault(FaultRule::new(FaultKind::NotFound).route("simplemdm.assignment_groups"));
    let err = client.fetch_snapshot().await.unwrap_err();
    assert!(err.to_string().contains("injected: not found"), "{err}");
    ctl.clear_faults();
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn e2_retry_after_of_a_429_is_honoured_then_the_snapshot_completes() {
    let sim = start(big_scenario()).await;
    let ctl = sim.control();
    ctl.add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 1,
        })
        .route("simplemdm.assignment_groups")
        .times(1),
    );
    let got = client(&sim).fetch_snapshot().await.unwrap();
    assert_same(&got, &ctl.scenario().expected_snapshot(P));
    let pages = routed(&ctl, "simplemdm.assignment_groups");
    assert_eq!(pages[0].status, Some(429));
    assert_eq!(pages[1].status, Some(200));
    let waited = pages[1].started - pages[0].finished;
    assert!(
        waited >= chrono::Duration::milliseconds(900),
        "Retry-After: 1 honoured, waited {waited}"
    );
    // Persistent 429s end as a server error once retries are spent.
    ctl.add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 0,
        })
        .route("simplemdm.assignment_groups"),
    );
    let err = client(&sim).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("429"), "{err}");
}

#[tokio::test]
async fn e1_connection_refused_is_connection_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = SimpleMdmConfig::new(SecretString::from("k3y-value"))
        .with_base_url(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_http(fast_http());
    let client = SimpleMdmClient::new(config).unwrap();
    assert_eq!(
        kind(client.validate_credentials().await),
        ErrorKind::ConnectionFailed
    );
    assert_eq!(
        kind(client.fetch_snapshot().await),
        ErrorKind::ConnectionFailed
    );
}

#[tokio::test]
async fn e3_tls_needs_the_simulator_ca_and_works_with_it() {
    let sim = Simulator::start(SimOptions::new(P, Scenario::generate(5, 30, 3, 40)).with_tls())
        .await
        .unwrap();
    let err = client(&sim).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
    let mut http = fast_http();
    http.extra_ca_pem = vec![sim.ca_cert_pem().unwrap()];
    let trusted = SimpleMdmClient::new(config(&sim).with_http(http)).unwrap();
    assert_same(
        &trusted.fetch_snapshot().await.unwrap(),
        &sim.control().scenario().expected_snapshot(P),
    );
}

#[tokio::test]
async fn g8_a_failure_on_the_last_page_fails_the_whole_snapshot() {
    let sim = start(big_scenario()).await;
    let ctl = sim.control();
    let client = client(&sim);
    for last in [
        FaultKind::InternalServerError,
        FaultKind::TruncatedJson,
        FaultKind::DropConnection,
    ] {
        ctl.clear_requests();
        // First-match rules: two pages pass, the third (last) fails, every attempt.
        ctl.add_fault(
            FaultRule::new(FaultKind::Delay { millis: 0 })
                .route("simplemdm.assignment_groups")
                .times(2),
        );
        let id = ctl.add_fault(FaultRule::new(last.clone()).route("simplemdm.assignment_groups"));
        let err = client.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert!(
            matches!(
                err.kind(),
                Some(ErrorKind::ServerError | ErrorKind::ConnectionFailed)
            ),
            "{last:?}: {err}"
        );
        let pages = routed(&ctl, "simplemdm.assignment_groups");
        assert_eq!(param(&pages[2], "starting_after"), Some("200"), "{pages:?}");
    }
    assert_same(
        &client.fetch_snapshot().await.unwrap(),
        &ctl.scenario().expected_snapshot(P),
    );
}

#[tokio::test]
async fn p2_loops_and_repeated_items_are_refused_never_truncated() {
    let sim = start(big_scenario()).await;
    let ctl = sim.control();
    let client = client(&sim);
    for fault in [FaultKind::PaginationLoop, FaultKind::DuplicateItems] {
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route("simplemdm.assignment_groups"));
        let err = client.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{fault:?}");
        assert!(err.to_string().contains("repeats id"), "{fault:?}: {err}");
    }
    // A sweep of devices is guarded the same way.
    let sweeper =
        SimpleMdmClient::new(config(&sim).with_lookup_strategy(LookupStrategy::Sweep)).unwrap();
    ctl.add_fault(FaultRule::new(FaultKind::PaginationLoop).route("simplemdm.devices"));
    let serial = ctl.scenario().devices[0].serial_number.clone().unwrap();
    assert_eq!(
        kind(sweeper.lookup_devices(&[serial]).await),
        ErrorKind::ServerError
    );
}

fn sorted(mut v: Vec<MdmDeviceRecord>) -> Vec<MdmDeviceRecord> {
    v.sort_by(|a, b| a.mdm_device_id.cmp(&b.mdm_device_id));
    v
}

#[tokio::test]
async fn m1_m6_lookup_returns_exact_serial_matches_by_either_strategy() {
    let mut s = Scenario::generate(22, 250, 3, 50);
    // M6: device 7 repeats device 3's serial.
    s.devices[6].serial_number = s.devices[2].serial_number.clone();
    let dup = s.devices[2].serial_number.clone().unwrap();
    let lone = s.devices[10].serial_number.clone().unwrap();
    // Search noise: a device whose name contains a serial, and one whose serial extends it.
    s.devices[20].device_name = format!("Spare for {lone}");
    s.devices[21].serial_number = Some(format!("{lone}X"));
    let sim = start(s).await;
    let ctl = sim.control();
    let scenario = ctl.scenario();
    let asked = vec![
        dup.clone(),
        lone.clone(),
        "NOSUCHSERIAL".to_owned(),
        String::new(),
    ];
    for strategy in [LookupStrategy::PerSerial, LookupStrategy::Sweep] {
        ctl.clear_requests();
        let client = SimpleMdmClient::new(config(&sim).with_lookup_strategy(strategy)).unwrap();
        let found = client.lookup_devices(&asked).await.unwrap();
        assert_eq!(found.len(), asked.len());
        assert_eq!(
            sorted(found[&dup].clone()),
            sorted(scenario.expected_records(P, &dup)),
            "{strategy:?}"
        );
        assert_eq!(found[&dup].len(), 2);
        let lone_records = &found[&lone];
        assert_eq!(
            lone_records,
            &scenario.expected_records(P, &lone),
            "{strategy:?}: only the exact serial, not the name or longer serial"
        );
        assert_eq!(lone_records[0].user_id, None, "SimpleMDM has no user");
        assert_eq!(
            lone_records[0].display_name(),
            lone_records[0].device_name,
            "M1: the device name"
        );
        assert!(found["NOSUCHSERIAL"].is_empty());
        assert!(found[""].is_empty());
        let devices = routed(&ctl, "simplemdm.devices");
        assert!(devices.iter().all(|r| r.page_size == Some(100)));
        match strategy {
            LookupStrategy::PerSerial => {
                let searched: Vec<&str> =
                    devices.iter().filter_map(|r| param(r, "search")).collect();
                assert_eq!(searched.len(), 3, "one search per non-blank serial");
                assert!(!searched.contains(&""), "a blank serial is never searched");
            }
            _ => {
                assert_eq!(devices.len(), 3, "250 devices in pages of 100");
                assert_eq!(client.known_fleet_size(), Some(250));
            }
        }
    }
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn a1_refresh_reaches_the_device_and_unknown_devices_are_not_found() {
    let sim = start(Scenario::sample()).await;
    let ctl = sim.control();
    let client = client(&sim);
    client.force_sync(&"4".into()).await.unwrap();
    let syncs = ctl.force_syncs();
    assert_eq!(syncs.len(), 1);
    assert_eq!((syncs[0].provider, syncs[0].device), (P, 4));
    assert_eq!(routed(&ctl, "simplemdm.refresh")[0].status, Some(202));
    assert_eq!(
        kind(client.force_sync(&"999".into()).await),
        ErrorKind::NotFound
    );
    ctl.clear_requests();
    assert_eq!(
        kind(client.force_sync(&"not-a-number".into()).await),
        ErrorKind::NotFound
    );
    assert!(ctl.requests().is_empty(), "refused before any request");
}

#[tokio::test]
async fn m4_console_link_points_at_the_admin_device_page() {
    let sim = start(Scenario::sample()).await;
    let c = client(&sim);
    assert_eq!(
        c.console_url(&"17".into()).unwrap(),
        format!("{}/admin/devices/17", sim.origin())
    );
    assert_eq!(c.console_url(&"x/../17".into()), None);
    let public = SimpleMdmClient::new(SimpleMdmConfig::new(SecretString::from("k"))).unwrap();
    assert_eq!(
        public.console_url(&"121".into()).unwrap(),
        "https://a.simplemdm.com/admin/devices/121"
    );
}

#[tokio::test]
async fn c1_credential_test_reports_capabilities_and_each_refusal() {
    let sim = start(Scenario::sample()).await;
    let ctl = sim.control();
    let check = client(&sim).validate_credentials().await.unwrap();
    assert_eq!(
        (check.group_sync, check.metadata, check.force_sync),
        (Capability::Yes, Capability::Yes, Capability::Unknown)
    );
    assert_eq!(routed(&ctl, "simplemdm.account").len(), 1);
    assert!(ctl.force_syncs().is_empty());

    let wrong = "wrong-key-123456";
    let bad = SimpleMdmConfig::new(SecretString::from(wrong))
        .with_base_url(&sim.base_url())
        .unwrap()
        .with_http(fast_http());
    let err = SimpleMdmClient::new(bad)
        .unwrap()
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(!err.to_string().contains(wrong), "{err}");

    // No group read: Forbidden, saying what to grant.
    let id =
        ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("simplemdm.assignment_groups"));
    let err = client(&sim).validate_credentials().await.unwrap_err();
    ctl.remove_fault(id);
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    assert!(err.to_string().contains("read assignment groups"), "{err}");

    // No device read: group sync still works, metadata does not (A7).
    let id = ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("simplemdm.devices"));
    let check = client(&sim).validate_credentials().await.unwrap();
    ctl.remove_fault(id);
    assert_eq!(
        (check.group_sync, check.metadata),
        (Capability::Yes, Capability::No)
    );

    // No account read: not needed for the sync.
    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("simplemdm.account"));
    assert!(client(&sim).validate_credentials().await.is_ok());
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn p5_the_request_budget_is_configurable_and_enforced() {
    assert_eq!(
        SimpleMdmConfig::new(SecretString::from("k"))
            .http
            .rate_limit,
        Some(RateLimit {
            requests: 30,
            per: Duration::from_secs(30)
        }),
        "about one request per second, with bursts"
    );
    let sim = start(big_scenario()).await;
    let ctl = sim.control();
    let mut config = config(&sim);
    // Two requests per hour: the third page would wait far past the operation's deadline,
    // so it is refused without being sent.
    config.http.rate_limit = Some(RateLimit {
        requests: 2,
        per: Duration::from_secs(3600),
    });
    config.operation_timeout = Duration::from_secs(5);
    let err = SimpleMdmClient::new(config)
        .unwrap()
        .fetch_snapshot()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert_eq!(ctl.requests().len(), 2);
}

#[tokio::test]
async fn g11_an_empty_group_list_is_an_empty_snapshot() {
    let sim = start(Scenario::generate(8, 20, 3, 20)).await;
    sim.control()
        .add_fault(FaultRule::new(FaultKind::EmptyGroupList));
    let got = client(&sim).fetch_snapshot().await.unwrap();
    assert!(got.groups.is_empty());
}
