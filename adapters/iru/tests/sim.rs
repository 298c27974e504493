//! The Iru adapter against the simulator (`mdmsim`): complete multi-page snapshots by both
//! strategies, every E1 kind, G8 (a failed last page fails everything), pagination guards,
//! look-ups with duplicate serials, blank push, the credential test, and no secret in a URL.

use mdmsim::{FaultKind, FaultRule, RunningSim, Scenario, SimControl, SimOptions, Simulator, ids};
use mdmsync_core::{
    Capability, Credentials, ErrorKind, MdmClient, MdmDeviceRecord, MdmError, Provider, Snapshot,
};
use mdmsync_http::{HttpConfig, RateLimit, RetryPolicy};
use mdmsync_iru::{IruClient, IruConfig, LookupStrategy, SnapshotStrategy};
use secrecy::SecretString;
use std::time::Duration;

const P: Provider = Provider::Iru;

/// Fast retries, no proxy from the environment; keeps the Iru request budget (P5).
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
        ..HttpConfig::for_provider(P)
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

fn config(sim: &RunningSim) -> IruConfig {
    IruConfig::from_credentials(&credentials(sim), None)
        .unwrap()
        .with_http(fast_http())
}

fn client(sim: &RunningSim) -> IruClient {
    IruClient::new(config(sim)).unwrap()
}

async fn start(scenario: Scenario) -> RunningSim {
    Simulator::start(SimOptions::new(P, scenario))
        .await
        .unwrap()
}

/// 700 devices (3 device pages of 300), 23 tags in pages of 10 (3 tag pages).
fn big_scenario() -> Scenario {
    let mut s = Scenario::generate(11, 700, 23, 1600);
    s.options.iru_tag_page_size = 10;
    s
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

/// C2: the API token never appears in a path or query string.
fn assert_no_secret_in_urls(sim: &RunningSim) {
    let token = sim.credentials()["api_token"].clone();
    let requests = sim.control().requests();
    assert!(!requests.is_empty());
    for r in requests {
        assert!(
            !r.path.contains(&token) && !r.query.contains(&token),
            "{r:?}"
        );
    }
}

fn kind(r: Result<impl std::fmt::Debug, MdmError>) -> ErrorKind {
    r.unwrap_err().kind().unwrap()
}

#[tokio::test]
async fn p2_sweep_snapshot_of_several_pages_equals_the_scenario() {
    let sim = start(big_scenario()).await;
    let ctl = sim.control();
    let client = client(&sim);
    let got = client.fetch_snapshot().await.unwrap();
    assert_same(&got, &ctl.scenario().expected_snapshot(P));
    assert_eq!(got.groups.len(), 23);

    let tags = routed(&ctl, "iru.tags");
    assert_eq!(tags.len(), 3, "three DRF pages followed through `next`");
    assert!(tags.iter().all(|r| r.query.contains("search=")), "{tags:?}");
    let devices = routed(&ctl, "iru.devices");
    assert_eq!(devices.len(), 3, "700 devices in pages of 300: {devices:?}");
    assert!(devices.iter().all(|r| r.page_size == Some(300)));
    let offsets: Vec<&str> = devices
        .iter()
        .map(|r| {
            r.query
                .split('&')
                .find(|p| p.starts_with("offset="))
                .unwrap()
        })
        .collect();
    assert_eq!(offsets, ["offset=0", "offset=300", "offset=600"]);
    assert!(!devices.iter().any(|r| r.query.contains("tag_id")));
    assert_eq!(client.known_fleet_size(), Some(700));
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn p2_per_tag_snapshot_pages_each_tag_by_id() {
    // Three tags of about 500 members each: two pages per tag.
    let sim = start(Scenario::generate(12, 700, 3, 1500)).await;
    let ctl = sim.control();
    let client =
        IruClient::new(config(&sim).with_snapshot_strategy(SnapshotStrategy::PerTag)).unwrap();
    let got = client.fetch_snapshot().await.unwrap();
    let want = ctl.scenario().expected_snapshot(P);
    assert_same(&got, &want);
    let devices = routed(&ctl, "iru.devices");
    assert!(devices.iter().all(|r| r.page_size == Some(300)));
    for g in &want.groups {
        let pages = devices
            .iter()
            .filter(|r| r.query.contains(&format!("tag_id={}", g.id)))
            .count();
        assert_eq!(pages, g.members.len() / 300 + 1, "tag {}", g.name);
        assert!(pages >= 2);
    }
    assert_eq!(client.known_fleet_size(), None, "no sweep ran");
}

#[tokio::test]
async fn g3_tags_sharing_a_name_are_listed_by_id() {
    let mut s = Scenario::generate(13, 40, 4, 60);
    s.groups[1].name = s.groups[0].name.clone();
    let sim = start(s).await;
    let ctl = sim.control();
    let got = client(&sim).fetch_snapshot().await.unwrap();
    let want = ctl.scenario().expected_snapshot(P);
    assert_same(&got, &want);
    let by_id: Vec<_> = routed(&ctl, "iru.devices")
        .into_iter()
        .filter(|r| r.query.contains("tag_id="))
        .collect();
    assert_eq!(
        by_id.len(),
        2,
        "only the two tags sharing a name: {by_id:?}"
    );
    for g in &want.groups[..2] {
        assert!(by_id.iter().any(|r| r.query.contains(g.id.as_str())));
    }
}

#[tokio::test]
async fn p2_a_tag_renamed_during_the_sweep_is_listed_by_id_not_lost() {
    let sim = start(Scenario::generate(14, 50, 5, 120)).await;
    let ctl = sim.control();
    let want = ctl.scenario().expected_snapshot(P);
    // Hold the sweep's first page long enough to rename a tag after the tag list was read.
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 1_000 })
            .route("iru.devices")
            .times(1),
    );
    let client = client(&sim);
    let task = tokio::spawn(async move { client.fetch_snapshot().await });
    while routed(&ctl, "iru.tags").is_empty() || ctl.stats().in_flight == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ctl.rename_group(2, "Renamed mid-sync").unwrap();
    let got = task.await.unwrap().unwrap();
    // Names as of the tag list; members complete, found by tag id.
    assert_same(&got, &want);
    let by_id = routed(&ctl, "iru.devices")
        .into_iter()
        .filter(|r| r.query.contains("tag_id="))
        .count();
    assert_eq!(by_id, 5, "every tag listed by id after the failed join");
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
                status: 502,
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
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route("iru.tags"));
        let err = client.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(want), "{fault:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("Iru (formerly Kandji): list tags failed"),
            "{msg}"
        );
        assert_eq!(
            routed(&ctl, "iru.tags").len(),
            attempts,
            "{fault:?}: 5xx/reset retried, others not (E2)"
        );
        assert!(routed(&ctl, "iru.devices").is_empty(), "stopped at once");
    }
    // The bare-string body of a 503 is read as the server's message.
    ctl.add_fault(
        FaultRule::new(FaultKind::ServiceUnavailable {
            retry_after_secs: None,
        })
        .route("iru.tags"),
    );
    let err = client.fetch_snapshot().await.unwrap_err();
    assert!(
        err.to_string().contains("injected: service unavailable"),
        "{err}"
    );
    ctl.clear_faults();
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn e2_retry_after_of_a_429_is_honoured_then_the_snapshot_completes() {
    let sim = start(Scenario::generate(4, 30, 3, 40)).await;
    let ctl = sim.control();
    ctl.add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 1,
        })
        .route("iru.devices")
        .times(1),
    );
    let got = client(&sim).fetch_snapshot().await.unwrap();
    assert_same(&got, &ctl.scenario().expected_snapshot(P));
    let devices = routed(&ctl, "iru.devices");
    assert_eq!(devices[0].status, Some(429));
    assert_eq!(devices[1].status, Some(200));
    let waited = devices[1].started - devices[0].finished;
    assert!(
        waited >= chrono::Duration::milliseconds(900),
        "Retry-After: 1 honoured, waited {waited}"
    );
}

#[tokio::test]
async fn e2_429_after_every_retry_is_a_server_error() {
    let sim = start(Scenario::generate(4, 30, 3, 40)).await;
    sim.control().add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 0,
        })
        .route("iru.devices"),
    );
    let err = client(&sim).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("429"), "{err}");
    assert!(err.to_string().contains("rate limit"), "{err}");
}

#[tokio::test]
async fn e1_connection_refused_is_connection_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = IruConfig::new(
        &format!("http://127.0.0.1:{port}"),
        SecretString::from("t0ken-value"),
    )
    .unwrap()
    .with_http(fast_http());
    let client = IruClient::new(config).unwrap();
    let err = client.validate_credentials().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
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
    let untrusted = client(&sim);
    let err = untrusted.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");

    let mut http = fast_http();
    http.extra_ca_pem = vec![sim.ca_cert_pem().unwrap()];
    let trusted = IruClient::new(config(&sim).with_http(http)).unwrap();
    let got = trusted.fetch_snapshot().await.unwrap();
    assert_same(&got, &sim.control().scenario().expected_snapshot(P));
    assert!(trusted.validate_credentials().await.is_ok());
}

#[tokio::test]
async fn g8_a_failure_on_the_last_page_fails_the_whole_snapshot() {
    let sim = start(big_scenario()).await;
    let ctl = sim.control();
    let client = client(&sim);
    // Rules apply first-match: two device pages pass, the third (last) fails.
    for last in [FaultKind::InternalServerError, FaultKind::TruncatedJson] {
        ctl.clear_requests();
        ctl.add_fault(
            FaultRule::new(FaultKind::Delay { millis: 0 })
                .route("iru.devices")
                .times(2),
        );
        ctl.add_fault(FaultRule::new(last.clone()).route("iru.devices").times(1));
        let err = client.fetch_snapshot().await.unwrap_err();
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{last:?}: {err}");
        let devices = routed(&ctl, "iru.devices");
        assert_eq!(devices.len(), 3, "{devices:?}");
        assert!(devices[2].query.contains("offset=600"));
        assert!(devices[2].fault.is_some());
    }
    // The last tag page, too.
    ctl.add_fault(
        FaultRule::new(FaultKind::Delay { millis: 0 })
            .route("iru.tags")
            .times(2),
    );
    ctl.add_fault(
        FaultRule::new(FaultKind::MalformedJson)
            .route("iru.tags")
            .times(1),
    );
    assert_eq!(kind(client.fetch_snapshot().await), ErrorKind::ServerError);
    // And without faults the same client succeeds: nothing was half-applied.
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
    let cases = [
        // The first page served again: its items repeat before its `next` link is followed.
        ("iru.tags", FaultKind::PaginationLoop, "loops"),
        ("iru.tags", FaultKind::DuplicateItems, "repeats id"),
        ("iru.devices", FaultKind::PaginationLoop, "repeats id"),
        ("iru.devices", FaultKind::DuplicateItems, "repeats id"),
    ];
    for (route, fault, why) in cases {
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route(route));
        let err = client.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(
            err.kind(),
            Some(ErrorKind::ServerError),
            "{route} {fault:?}"
        );
        assert!(err.to_string().contains(why), "{route} {fault:?}: {err}");
        assert!(err.to_string().contains("P2"), "{err}");
    }
    // Per tag as well.
    let per_tag =
        IruClient::new(config(&sim).with_snapshot_strategy(SnapshotStrategy::PerTag)).unwrap();
    ctl.add_fault(FaultRule::new(FaultKind::PaginationLoop).route("iru.devices"));
    let mut few = Scenario::generate(15, 400, 2, 700);
    few.options.iru_tag_page_size = 10;
    ctl.replace_scenario(few).unwrap();
    assert_eq!(kind(per_tag.fetch_snapshot().await), ErrorKind::ServerError);
}

fn sorted(mut v: Vec<MdmDeviceRecord>) -> Vec<MdmDeviceRecord> {
    v.sort_by(|a, b| a.mdm_device_id.cmp(&b.mdm_device_id));
    v
}

#[tokio::test]
async fn m1_m6_lookup_returns_every_record_of_a_serial_by_either_strategy() {
    let mut s = Scenario::generate(16, 650, 3, 100);
    // M6: device 7 repeats device 3's serial; device 9 has no user (`user: ""`).
    s.devices[6].serial_number = s.devices[2].serial_number.clone();
    s.devices[8].user = None;
    let dup = s.devices[2].serial_number.clone().unwrap();
    let lone = s.devices[8].serial_number.clone().unwrap();
    let sim = start(s).await;
    let ctl = sim.control();
    let scenario = ctl.scenario();
    let asked = vec![
        dup.clone(),
        lone.clone(),
        "NOSUCHSERIAL".to_owned(),
        "  ".to_owned(),
        lone.to_lowercase(),
    ];
    for strategy in [LookupStrategy::PerSerial, LookupStrategy::Sweep] {
        ctl.clear_requests();
        let client = IruClient::new(config(&sim).with_lookup_strategy(strategy)).unwrap();
        let found = client.lookup_devices(&asked).await.unwrap();
        assert_eq!(found.len(), asked.len(), "every serial asked is answered");
        assert_eq!(
            sorted(found[&dup].clone()),
            sorted(scenario.expected_records(P, &dup)),
            "{strategy:?}"
        );
        assert_eq!(found[&dup].len(), 2);
        let lone_records = &found[&lone];
        assert_eq!(lone_records, &scenario.expected_records(P, &lone));
        assert_eq!(lone_records[0].user_id, None, "`user: \"\"` is no user");
        assert_eq!(
            lone_records[0].display_name(),
            lone_records[0].device_name,
            "M1: no user, so the device name"
        );
        assert_eq!(
            found[&lone.to_lowercase()],
            found[&lone],
            "case-insensitive"
        );
        assert!(found["NOSUCHSERIAL"].is_empty());
        assert!(found["  "].is_empty());
        let devices = routed(&ctl, "iru.devices");
        assert!(devices.iter().all(|r| r.page_size == Some(300)));
        assert!(
            !devices.iter().any(|r| r.query.contains("serial_number=&")
                || r.query.ends_with("serial_number=")),
            "a blank serial is never sent (it would match everything)"
        );
        match strategy {
            LookupStrategy::PerSerial => {
                assert_eq!(devices.len(), 3, "one per distinct serial: {devices:?}")
            }
            _ => assert_eq!(devices.len(), 3, "650 devices, 3 pages: {devices:?}"),
        }
    }
    // Auto: after a sweep taught it the fleet size (650 = 3 pages), 4 serials go by sweep.
    let auto = client(&sim);
    auto.fetch_snapshot().await.unwrap();
    ctl.clear_requests();
    let four: Vec<String> = scenario.devices[20..24]
        .iter()
        .map(|d| d.serial_number.clone().unwrap())
        .collect();
    let found = auto.lookup_devices(&four).await.unwrap();
    assert!(found.values().all(|v| v.len() == 1));
    assert!(
        routed(&ctl, "iru.devices")
            .iter()
            .all(|r| !r.query.contains("serial_number")),
        "swept"
    );
    ctl.clear_requests();
    auto.lookup_devices(&four[..2]).await.unwrap();
    assert_eq!(routed(&ctl, "iru.devices").len(), 2, "per serial");
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn a1_blank_push_reaches_the_device_and_unknown_devices_are_not_found() {
    let sim = start(Scenario::sample()).await;
    let ctl = sim.control();
    let client = client(&sim);
    client
        .force_sync(&ids::iru_device_id(3).into())
        .await
        .unwrap();
    let pushes = ctl.force_syncs();
    assert_eq!(pushes.len(), 1);
    assert_eq!((pushes[0].provider, pushes[0].device), (P, 3));
    let blank = routed(&ctl, "iru.blankpush");
    assert_eq!(blank[0].method, "POST");
    // Unknown device: Iru answers an HTML 404.
    let err = client
        .force_sync(&"00000000-0000-4000-8000-000000000000".into())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("send a blank push"), "{err}");
    // Not retried (a POST): one 503 is final.
    ctl.add_fault(
        FaultRule::new(FaultKind::ServiceUnavailable {
            retry_after_secs: None,
        })
        .route("iru.blankpush"),
    );
    ctl.clear_requests();
    assert_eq!(
        kind(client.force_sync(&ids::iru_device_id(3).into()).await),
        ErrorKind::ServerError
    );
    assert_eq!(routed(&ctl, "iru.blankpush").len(), 1);
    assert_eq!(ctl.force_syncs().len(), 1);
}

#[tokio::test]
async fn m4_console_link_uses_the_configured_web_url() {
    let sim = start(Scenario::sample()).await;
    assert_eq!(
        client(&sim).console_url(&"x".into()),
        None,
        "no web host for 127.0.0.1"
    );
    let linked =
        IruClient::new(config(&sim).with_web_url("https://acme.kandji.io").unwrap()).unwrap();
    let id = ids::iru_device_id(1);
    assert_eq!(
        linked.console_url(&id.as_str().into()).unwrap(),
        format!("https://acme.kandji.io/devices/{id}")
    );
}

#[tokio::test]
async fn c1_credential_test_reports_capabilities_and_each_refusal() {
    let sim = start(Scenario::sample()).await;
    let ctl = sim.control();
    let check = client(&sim).validate_credentials().await.unwrap();
    assert_eq!(check.group_sync, Capability::Yes);
    assert_eq!(check.metadata, Capability::Yes);
    assert_eq!(
        check.force_sync,
        Capability::Unknown,
        "never pushes to test"
    );
    assert!(ctl.force_syncs().is_empty());

    // A wrong token: Unauthorized, and the token is in no message.
    let wrong = "wrong-token-123456";
    let bad = IruConfig::new(&sim.base_url(), SecretString::from(wrong))
        .unwrap()
        .with_http(fast_http());
    let err = IruClient::new(bad)
        .unwrap()
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(
        err.to_string()
            .contains("Incorrect authentication credentials"),
        "{err}"
    );
    assert!(!err.to_string().contains(wrong));

    // No tag permission, or no device permission: Forbidden, saying which.
    for (route, what) in [("iru.tags", "read tags"), ("iru.devices", "list devices")] {
        let id = ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route(route));
        let err = client(&sim).validate_credentials().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
        assert!(err.to_string().contains(what), "{err}");
    }
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn p5_the_request_budget_is_enforced_by_the_adapter() {
    let sim = start(Scenario::generate(6, 20, 3, 20)).await;
    let ctl = sim.control();
    let mut config = config(&sim);
    assert_eq!(
        config.http.rate_limit,
        Some(RateLimit {
            requests: 10_000,
            per: Duration::from_secs(3600)
        }),
        "Iru's documented 10,000 requests per hour"
    );
    // A budget of 2 requests per hour: the third request of the snapshot would have to wait
    // far past the operation's deadline, so it is refused without being sent.
    config.http.rate_limit = Some(RateLimit {
        requests: 2,
        per: Duration::from_secs(3600),
    });
    config.operation_timeout = Duration::from_secs(5);
    config.snapshot = SnapshotStrategy::PerTag;
    let err = IruClient::new(config)
        .unwrap()
        .fetch_snapshot()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert_eq!(ctl.requests().len(), 2, "only the budget was sent");
}

#[tokio::test]
async fn g11_no_tags_is_an_empty_snapshot_without_a_sweep() {
    let sim = start(Scenario::generate(8, 20, 3, 20)).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::EmptyGroupList));
    let got = client(&sim).fetch_snapshot().await.unwrap();
    assert!(got.groups.is_empty());
    assert!(routed(&ctl, "iru.devices").is_empty());
}
