//! E1/E2/E3 and C1: every failure has its kind, a message naming Jamf and the operation, and
//! never a credential.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Scenario, SimOptions, Simulator};
use mdmsync_core::{Capability, ErrorKind, MdmClient, Provider};
use mdmsync_http::SecretString;
use mdmsync_jamf::{JamfClient, JamfConfig};

fn scenario() -> Scenario {
    Scenario::generate(5, 30, 6, 80)
}

#[tokio::test]
async fn e1_injected_faults_during_a_sync_have_their_kinds() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let jamf = client(&sim, 10);
    jamf.fetch_snapshot().await.unwrap();
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
        (
            FaultKind::Status {
                status: 502,
                retry_after_secs: None,
            },
            ErrorKind::ServerError,
        ),
        (FaultKind::MalformedJson, ErrorKind::ServerError),
        (FaultKind::TruncatedJson, ErrorKind::ServerError),
        (FaultKind::DropConnection, ErrorKind::ConnectionFailed),
    ];
    for (fault, kind) in cases {
        ctl.clear_requests();
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route(INVENTORY));
        let err = jamf.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(kind), "{fault:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("Jamf: list computers with group memberships failed"),
            "{msg}"
        );
        if kind != ErrorKind::ConnectionFailed {
            assert!(msg.contains("HTTP "), "{msg}");
        }
        assert!(!msg.contains(&sim.credentials()["client_secret"]), "{msg}");
        let pages = on(INVENTORY, &ctl.requests());
        match fault {
            // E2: transient statuses are retried (3 attempts in the test config).
            FaultKind::ServiceUnavailable { .. } | FaultKind::Status { .. } => {
                assert_eq!(pages.len(), 3, "{fault:?}")
            }
            // P4: one fresh token and one retry, then Unauthorized.
            FaultKind::Unauthorized => assert_eq!(pages.len(), 2),
            _ => {}
        }
    }
    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("jamf.groups"));
    let err = jamf.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden));
    assert!(
        err.to_string().contains("Read Static Computer Groups"),
        "{err}"
    );
}

#[tokio::test]
async fn e2_retry_after_is_honoured_then_the_sync_succeeds() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    ctl.add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 1,
        })
        .route(INVENTORY)
        .times(1),
    );
    let snap = client(&sim, 10).fetch_snapshot().await.unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Jamf));
    let pages = on(INVENTORY, &ctl.requests());
    assert_eq!(pages[0].status, Some(429));
    assert_eq!(pages[1].status, Some(200));
    assert_eq!(param(&pages[0], "page"), param(&pages[1], "page"));
    let waited = pages[1].started - pages[0].finished;
    assert!(waited >= chrono::Duration::milliseconds(900), "{waited:?}");
}

#[tokio::test]
async fn e1_a_closed_port_is_connection_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut c = JamfConfig::new(
        &format!("http://127.0.0.1:{port}"),
        "id",
        SecretString::from("s3cr3t-value"),
    )
    .unwrap();
    c.http = fast_http();
    let err = JamfClient::new(c)
        .unwrap()
        .fetch_snapshot()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(!err.to_string().contains("s3cr3t-value"));
}

#[tokio::test]
async fn e3_tls_needs_the_servers_ca_and_works_with_it() {
    let sim = Simulator::start(SimOptions::new(Provider::Jamf, scenario()).with_tls())
        .await
        .unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let err = client(&sim, 10).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
    let mut c = config(&sim);
    c.page_size = 10;
    c.http.extra_ca_pem = vec![sim.ca_cert_pem().unwrap()];
    let snap = JamfClient::new(c).unwrap().fetch_snapshot().await.unwrap();
    assert_same(
        &snap,
        &sim.control().scenario().expected_snapshot(Provider::Jamf),
    );
}

#[tokio::test]
async fn c1_credential_test_reports_capabilities_and_the_version() {
    let sim = start(scenario()).await;
    let check = client(&sim, 10).validate_credentials().await.unwrap();
    assert_eq!(check.group_sync, Capability::Yes);
    assert_eq!(check.metadata, Capability::Yes);
    assert_eq!(check.force_sync, Capability::Unknown);
    assert_eq!(
        check.server_version.as_deref(),
        Some("11.30.1-t1784555528405")
    );
    let routes: Vec<_> = sim
        .control()
        .requests()
        .into_iter()
        .filter_map(|r| r.route)
        .collect();
    assert_eq!(
        routes,
        [
            "jamf.token",
            "jamf.version",
            "jamf.groups",
            "jamf.inventory"
        ]
    );
}

#[tokio::test]
async fn c1_a_wrong_secret_is_unauthorized_without_the_secret_in_the_message() {
    let sim = start(scenario()).await;
    let mut c = config(&sim);
    c.client_secret = SecretString::from("wrong-secret-value".to_owned());
    let err = JamfClient::new(c)
        .unwrap()
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(!err.to_string().contains("wrong-secret-value"), "{err}");
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn c1_a_missing_privilege_is_forbidden_at_connect_time() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let jamf = client(&sim, 10);
    let id = ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route("jamf.groups"));
    let err = jamf.validate_credentials().await.unwrap_err();
    ctl.remove_fault(id);
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    assert!(
        err.to_string().contains("Read Smart Computer Groups"),
        "{err}"
    );
    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route(INVENTORY));
    let err = jamf.validate_credentials().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    assert!(err.to_string().contains("Read Computers"), "{err}");
}

#[tokio::test]
async fn c1_a_host_that_is_not_jamf_is_not_found() {
    let sim = start(scenario()).await;
    sim.control().add_fault(FaultRule::new(FaultKind::NotFound));
    let err = client(&sim, 10).validate_credentials().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    // Both token URLs were tried (P4 fallback).
    let paths: Vec<_> = sim
        .control()
        .requests()
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(paths, ["/api/oauth/token", "/api/v1/oauth/token"]);
}
