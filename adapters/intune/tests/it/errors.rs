//! E1/E2/E3 and C1: every failure has its kind, a message naming Intune and the operation,
//! and never a credential.

use crate::common::*;
use mdmsim::{FaultKind, FaultRule, Scenario, SimOptions, Simulator};
use mdmsync_core::{Capability, ErrorKind, MdmClient, Provider};
use mdmsync_http::SecretString;
use mdmsync_intune::{IntuneClient, IntuneConfig};

fn scenario() -> Scenario {
    Scenario::generate(5, 40, 5, 90)
}

#[tokio::test]
async fn e1_injected_faults_during_a_sync_have_their_kinds() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let intune = client(&sim, 10, 15);
    intune.fetch_snapshot().await.unwrap();
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
                status: 504,
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
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route(DEVICES));
        let err = intune.fetch_snapshot().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(kind), "{fault:?}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("Microsoft Intune: list Intune managed devices failed"),
            "{msg}"
        );
        if kind != ErrorKind::ConnectionFailed {
            assert!(msg.contains("HTTP "), "{msg}");
        }
        assert!(!msg.contains(&sim.credentials()["client_secret"]), "{msg}");
        let hits = on(DEVICES, &ctl.requests()).len();
        match fault {
            FaultKind::ServiceUnavailable { .. } | FaultKind::Status { .. } => {
                assert_eq!(hits, 3, "E2: retried")
            }
            FaultKind::Unauthorized => assert_eq!(hits, 2, "P4: one fresh token, one retry"),
            FaultKind::Forbidden => {
                assert!(
                    msg.contains("DeviceManagementManagedDevices.Read.All"),
                    "{msg}"
                )
            }
            _ => {}
        }
    }
    ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route(GROUPS));
    let err = intune.fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden));
    assert!(err.to_string().contains("GroupMember.Read.All"), "{err}");
}

#[tokio::test]
async fn e2_a_429_retry_after_is_honoured_then_the_sync_succeeds() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    ctl.add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 1,
        })
        .route(MEMBERS)
        .times(1),
    );
    let mut c = config(&sim);
    c.member_concurrency = 1;
    let snap = IntuneClient::new(c)
        .unwrap()
        .fetch_snapshot()
        .await
        .unwrap();
    assert_same(&snap, &ctl.scenario().expected_snapshot(Provider::Intune));
    let members = on(MEMBERS, &ctl.requests());
    assert_eq!(members[0].status, Some(429));
    assert_eq!(members[1].status, Some(200));
    assert_eq!(members[0].query, members[1].query, "the same request again");
    let waited = members[1].started - members[0].finished;
    assert!(waited >= chrono::Duration::milliseconds(900), "{waited:?}");
}

#[tokio::test]
async fn e1_a_closed_port_is_connection_failed() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let origin = format!("http://127.0.0.1:{port}");
    let mut c = IntuneConfig::for_cloud(
        &format!("{origin}/v1.0"),
        Some(&origin),
        "contoso.onmicrosoft.com",
        "app",
        SecretString::from("s3cr3t-value".to_owned()),
    )
    .unwrap();
    c.http = fast_http();
    let err = IntuneClient::new(c)
        .unwrap()
        .fetch_snapshot()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(!err.to_string().contains("s3cr3t-value"));
}

#[tokio::test]
async fn e3_tls_needs_the_servers_ca_and_works_with_it() {
    let sim = Simulator::start(SimOptions::new(Provider::Intune, scenario()).with_tls())
        .await
        .unwrap();
    let err = client(&sim, 10, 25).fetch_snapshot().await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
    let mut c = config(&sim);
    c.http.extra_ca_pem = vec![sim.ca_cert_pem().unwrap()];
    let snap = IntuneClient::new(c)
        .unwrap()
        .fetch_snapshot()
        .await
        .unwrap();
    assert_same(
        &snap,
        &sim.control().scenario().expected_snapshot(Provider::Intune),
    );
}

#[tokio::test]
async fn c1_credential_test_reports_capabilities() {
    let sim = start(scenario()).await;
    let check = client(&sim, 10, 25).validate_credentials().await.unwrap();
    assert_eq!(check.group_sync, Capability::Yes);
    assert_eq!(check.metadata, Capability::Yes);
    assert_eq!(check.force_sync, Capability::Unknown);
    assert_eq!(check.server_version, None);
    let routes: Vec<_> = sim
        .control()
        .requests()
        .into_iter()
        .filter_map(|r| r.route)
        .collect();
    assert_eq!(routes[..3], ["intune.token", GROUPS, DEVICES]);
    assert!(routes[3..].iter().all(|r| r == MEMBERS) && routes.len() > 3);
}

#[tokio::test]
async fn c1_wrong_secret_or_tenant_is_unauthorized_without_the_secret() {
    let sim = start(scenario()).await;
    let mut c = config(&sim);
    c.client_secret = SecretString::from("wrong-secret-value".to_owned());
    let err = IntuneClient::new(c)
        .unwrap()
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(err.to_string().contains("AADSTS7000215"), "{err}");
    assert!(!err.to_string().contains("wrong-secret-value"), "{err}");
    let mut c = config(&sim);
    c.tenant_id = "00000000-1111-4000-8000-000000000000".into();
    let err = IntuneClient::new(c)
        .unwrap()
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert_no_secret_in_urls(&sim);
}

#[tokio::test]
async fn c1_missing_permissions_are_forbidden_at_connect_time() {
    let sim = start(scenario()).await;
    let ctl = sim.control();
    let intune = client(&sim, 10, 25);
    for (route, needle) in [
        (GROUPS, "GroupMember.Read.All"),
        (DEVICES, "DeviceManagementManagedDevices.Read.All"),
        (MEMBERS, "Device.Read.All"),
    ] {
        let id = ctl.add_fault(FaultRule::new(FaultKind::Forbidden).route(route));
        let err = intune.validate_credentials().await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{route}: {err}");
        assert!(err.to_string().contains(needle), "{route}: {err}");
    }
}

#[tokio::test]
async fn c1_without_device_read_all_the_credential_test_says_so() {
    let mut s = scenario();
    s.options.intune_device_read_all = false;
    let sim = start(s).await;
    let err = client(&sim, 10, 25)
        .validate_credentials()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Forbidden), "{err}");
    assert!(err.to_string().contains("Device.Read.All"), "{err}");
}
