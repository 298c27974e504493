//! Simulator start-up and a client with fast retries.

use mdmsim::{RequestRecord, RunningSim, Scenario, SimOptions, Simulator};
use mdmsync_core::{Credentials, Provider, Snapshot};
use mdmsync_http::{HttpConfig, RetryPolicy, SecretString};
use mdmsync_intune::{IntuneClient, IntuneConfig};
use std::time::Duration;

pub const GROUPS: &str = "intune.groups";
pub const MEMBERS: &str = "intune.group_members";
pub const DEVICES: &str = "intune.managed_devices";

/// The production settings with short timeouts and millisecond retries.
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
        ..HttpConfig::for_provider(Provider::Intune)
    }
}

pub async fn start(scenario: Scenario) -> RunningSim {
    Simulator::start(SimOptions::new(Provider::Intune, scenario))
        .await
        .unwrap()
}

pub fn credentials(sim: &RunningSim) -> Credentials {
    Credentials::new(
        Provider::Intune,
        sim.credentials()
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v))),
    )
    .unwrap()
}

/// Graph and login pointed at the simulator (P1), fast retries.
pub fn config(sim: &RunningSim) -> IntuneConfig {
    let mut c = IntuneConfig::from_credentials(
        &credentials(sim),
        Some(&sim.base_url()),
        sim.login_url().as_deref(),
    )
    .unwrap();
    c.http = fast_http();
    c
}

/// A client with the given `$top` for directory listings and managed devices.
pub fn client(sim: &RunningSim, directory_top: u32, device_top: u32) -> IntuneClient {
    let mut c = config(sim);
    c.directory_page_size = directory_top;
    c.device_page_size = device_top;
    IntuneClient::new(c).unwrap()
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

/// C2: neither the client secret nor a token appears in any path or query.
pub fn assert_no_secret_in_urls(sim: &RunningSim) {
    let secret = sim.credentials()["client_secret"].clone();
    for r in sim.control().requests() {
        for text in [&r.path, &r.query] {
            assert!(!text.contains(&secret), "secret in {} {}", r.path, r.query);
            assert!(!text.contains("client_secret"), "{}", r.query);
            assert!(!text.to_lowercase().contains("access_token"), "{}", r.query);
        }
    }
}
