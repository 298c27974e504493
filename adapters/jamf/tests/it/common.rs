//! Simulator start-up and a client with fast retries.

use mdmsim::{RequestRecord, RunningSim, Scenario, SimOptions, Simulator};
use mdmsync_core::{Credentials, Provider, Snapshot};
use mdmsync_http::{HttpConfig, RetryPolicy, SecretString};
use mdmsync_jamf::{JamfClient, JamfConfig};
use std::time::Duration;

pub const INVENTORY: &str = "jamf.inventory";

/// Jamf's production settings (5 connections, adaptive latency) with short timeouts and
/// millisecond retries.
pub fn fast_http() -> HttpConfig {
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
        ..HttpConfig::for_provider(Provider::Jamf)
    }
}

pub async fn start(scenario: Scenario) -> RunningSim {
    Simulator::start(SimOptions::new(Provider::Jamf, scenario))
        .await
        .unwrap()
}

pub fn credentials(sim: &RunningSim) -> Credentials {
    Credentials::new(
        Provider::Jamf,
        sim.credentials()
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v))),
    )
    .unwrap()
}

/// A config from the simulator's credentials (host = its origin), fast retries.
pub fn config(sim: &RunningSim) -> JamfConfig {
    let mut c = JamfConfig::from_credentials(&credentials(sim), None).unwrap();
    c.http = fast_http();
    c
}

pub fn client(sim: &RunningSim, page_size: u32) -> JamfClient {
    let mut c = config(sim);
    c.page_size = page_size;
    JamfClient::new(c).unwrap()
}

/// Order-independent comparison (the snapshot's validated form).
pub fn assert_same(actual: &Snapshot, expected: &Snapshot) {
    let a = actual.validate().expect("the adapter's snapshot is valid");
    let e = expected.validate().unwrap();
    assert_eq!(a.groups(), e.groups());
    assert_eq!(a, e);
}

pub fn on(route: &str, log: &[RequestRecord]) -> Vec<RequestRecord> {
    log.iter()
        .filter(|r| r.route.as_deref() == Some(route))
        .cloned()
        .collect()
}

/// One query parameter of a logged request.
pub fn param(r: &RequestRecord, key: &str) -> Option<String> {
    url::form_urlencoded::parse(r.query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// C2: neither the client secret nor an issued token appears in any path or query.
pub fn assert_no_secret_in_urls(sim: &RunningSim) {
    let secret = sim.credentials()["client_secret"].clone();
    for r in sim.control().requests() {
        for text in [&r.path, &r.query] {
            assert!(!text.contains(&secret), "secret in {} {}", r.path, r.query);
            assert!(
                !text.to_lowercase().contains("token="),
                "token in {}",
                r.query
            );
            assert!(!text.contains("client_secret"), "{}", r.query);
        }
    }
}
