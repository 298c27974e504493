//! The client against the MDM simulator (`mdmsim`, issue 4 part 3): each error kind, Retry-After,
//! loops and repeats in every provider's real pagination, token refresh mid-run, the host
//! concurrency limit, and no secret in any URL.

use crate::common::config;
use mdmsim::{FaultKind, FaultRule, RunningSim, Scenario, SimOptions, Simulator, ids};
use mdmsync_core::{ErrorKind, MdmError, Provider};
use mdmsync_http::{
    Auth, ClientCredentials, HasMorePage, HttpClient, HttpConfig, LinkPage, PageEnd, SecretString,
    TotalPage, Url, endpoint,
};
use std::time::Duration;

fn scenario() -> Scenario {
    Scenario::generate(7, 25, 12, 60)
}

async fn start(provider: Provider, scenario: Scenario) -> RunningSim {
    Simulator::start(SimOptions::new(provider, scenario))
        .await
        .unwrap()
}

fn http(provider: Provider) -> HttpClient {
    HttpClient::new(
        provider,
        HttpConfig {
            max_concurrent_per_host: HttpConfig::for_provider(provider).max_concurrent_per_host,
            ..config()
        },
    )
    .unwrap()
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn jamf_auth(sim: &RunningSim) -> Auth {
    let c = sim.credentials();
    Auth::client_credentials(
        ClientCredentials::new(
            url(&sim.token_url().unwrap()),
            c["client_id"].clone(),
            SecretString::from(c["client_secret"].clone()),
        )
        .with_fallback(endpoint(&url(&sim.origin()), "api/v1/oauth/token")),
    )
}

#[derive(serde::Deserialize)]
struct JamfGroup {
    id: String,
}

async fn jamf_groups(http: &HttpClient, sim: &RunningSim, auth: &Auth) -> Result<usize, MdmError> {
    let groups: Vec<JamfGroup> = http
        .get_json(
            "list computer groups",
            endpoint(&url(&sim.base_url()), "api/v1/computer-groups"),
            auth,
        )
        .await?;
    Ok(groups.len())
}

#[tokio::test]
async fn sim_e1_every_injected_fault_has_its_kind() {
    let sim = start(Provider::Jamf, scenario()).await;
    let ctl = sim.control();
    let auth = jamf_auth(&sim);
    let http = http(Provider::Jamf);
    assert_eq!(jamf_groups(&http, &sim, &auth).await.unwrap(), 12);
    let cases = [
        (FaultKind::Unauthorized, ErrorKind::Unauthorized),
        (FaultKind::Forbidden, ErrorKind::Forbidden),
        (FaultKind::NotFound, ErrorKind::NotFound),
        (FaultKind::InternalServerError, ErrorKind::ServerError),
        (
            FaultKind::TooManyRequests {
                retry_after_secs: 0,
            },
            ErrorKind::ServerError,
        ),
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
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route("jamf.groups"));
        let err = jamf_groups(&http, &sim, &auth).await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(kind), "{fault:?}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("Jamf: list computer groups failed"), "{msg}");
        if kind != ErrorKind::ConnectionFailed {
            assert!(msg.contains("HTTP "), "{msg}");
        }
    }
    // Past the client's timeout.
    let http_short = HttpClient::new(
        Provider::Jamf,
        HttpConfig {
            request_timeout: Duration::from_millis(200),
            ..config()
        },
    )
    .unwrap();
    ctl.add_fault(FaultRule::new(FaultKind::Delay { millis: 2_000 }).route("jamf.groups"));
    let err = jamf_groups(&http_short, &sim, &auth).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ConnectionFailed), "{err}");
    assert!(err.to_string().contains("timeout"), "{err}");
    ctl.clear_faults();
    // Wrong credentials: the simulator's token endpoint answers 401 invalid_client.
    let bad = Auth::client_credentials(ClientCredentials::new(
        url(&sim.token_url().unwrap()),
        "mdmsim-client",
        SecretString::from("wrong-secret-value"),
    ));
    let err = jamf_groups(&http, &sim, &bad).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized), "{err}");
    assert!(!err.to_string().contains("wrong-secret-value"), "{err}");
    // C2: no secret ever went into a URL.
    let secret = &sim.credentials()["client_secret"];
    for r in ctl.requests() {
        assert!(!r.query.contains(secret.as_str()) && !r.path.contains(secret.as_str()));
    }
}

#[tokio::test]
async fn sim_e1_tls_needs_the_simulator_ca() {
    let sim = Simulator::start(SimOptions::new(Provider::Fleet, scenario()).with_tls())
        .await
        .unwrap();
    let auth = Auth::bearer(SecretString::from(sim.credentials()["api_token"].clone()));
    let me = endpoint(&url(&sim.base_url()), "api/v1/fleet/me");
    let err = http(Provider::Fleet)
        .get_json::<serde_json::Value>("check the API token", &me, &auth)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
    let trusted = HttpClient::new(
        Provider::Fleet,
        HttpConfig {
            extra_ca_pem: vec![sim.ca_cert_pem().unwrap()],
            ..config()
        },
    )
    .unwrap();
    let v: serde_json::Value = trusted
        .get_json("check the API token", &me, &auth)
        .await
        .unwrap();
    assert!(v["user"].is_object());
}

#[tokio::test]
async fn sim_e2_retry_after_is_honoured() {
    let sim = start(Provider::Jamf, scenario()).await;
    let ctl = sim.control();
    ctl.add_fault(
        FaultRule::new(FaultKind::TooManyRequests {
            retry_after_secs: 1,
        })
        .route("jamf.groups")
        .times(1),
    );
    let auth = jamf_auth(&sim);
    assert_eq!(
        jamf_groups(&http(Provider::Jamf), &sim, &auth)
            .await
            .unwrap(),
        12
    );
    let hits: Vec<_> = ctl
        .requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some("jamf.groups"))
        .collect();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].status, Some(429));
    let gap = hits[1].started - hits[0].started;
    assert!(gap >= chrono::Duration::seconds(1), "{gap:?}");
}

#[tokio::test]
async fn sim_p4_tokens_expired_mid_run_are_replaced_once() {
    let sim = start(Provider::Jamf, scenario()).await;
    let ctl = sim.control();
    let auth = jamf_auth(&sim);
    let http = http(Provider::Jamf);
    jamf_groups(&http, &sim, &auth).await.unwrap();
    ctl.expire_tokens();
    jamf_groups(&http, &sim, &auth).await.unwrap();
    jamf_groups(&http, &sim, &auth).await.unwrap();
    assert_eq!(ctl.tokens_issued(), 2);
    let statuses: Vec<_> = ctl
        .requests()
        .into_iter()
        .filter(|r| r.route.as_deref() == Some("jamf.groups"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(200), Some(401), Some(200), Some(200)]);
}

#[tokio::test]
async fn sim_p4_a_short_lived_token_is_refreshed_before_expiry() {
    let mut s = scenario();
    s.token_lifetime_secs = Some(1);
    let sim = start(Provider::Jamf, s).await;
    let ctl = sim.control();
    let auth = jamf_auth(&sim);
    let http = http(Provider::Jamf);
    for _ in 0..3 {
        jamf_groups(&http, &sim, &auth).await.unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert_eq!(
        ctl.tokens_issued(),
        3,
        "a fresh token for each call past the margin"
    );
    assert!(ctl.requests().iter().all(|r| r.status != Some(401)));
}

#[tokio::test]
async fn sim_p5_concurrency_to_jamf_stays_at_five() {
    let sim = start(Provider::Jamf, scenario()).await;
    let ctl = sim.control();
    let auth = jamf_auth(&sim);
    let http = http(Provider::Jamf);
    jamf_groups(&http, &sim, &auth).await.unwrap(); // token
    ctl.add_fault(FaultRule::new(FaultKind::Delay { millis: 100 }).route("jamf.groups"));
    ctl.clear_requests();
    let calls = (0..15).map(|_| jamf_groups(&http, &sim, &auth));
    for r in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap(), 12);
    }
    assert_eq!(ctl.max_in_flight(), 5);
}

// ---- pagination against each provider's real paging ----

#[derive(serde::Deserialize)]
struct JamfInventory {
    #[serde(rename = "totalCount")]
    total: u64,
    results: Vec<JamfGroup>,
}

async fn jamf_inventory(sim: &RunningSim, auth: &Auth) -> Result<Vec<String>, MdmError> {
    let http = http(Provider::Jamf);
    let base = url(&sim.base_url());
    let items = http
        .pager("list computers")
        .numbered_with_total(
            4,
            |page| {
                let (http, base, auth) = (&http, &base, auth);
                async move {
                    let p: JamfInventory = http
                        .get(
                            "list computers",
                            endpoint(base, "api/v3/computers-inventory"),
                        )
                        .query(&[
                            ("page", &page.to_string()),
                            ("page-size", "4"),
                            ("sort", "id:asc"),
                        ])
                        .auth(auth)
                        .send_json()
                        .await?;
                    Ok(TotalPage {
                        total: p.total,
                        items: p.results,
                    })
                }
            },
            |c: &JamfGroup| c.id.clone(),
        )
        .await?;
    Ok(items.into_iter().map(|c| c.id).collect())
}

#[tokio::test]
async fn sim_p2_jamf_inventory_pages_and_guards() {
    let sim = start(Provider::Jamf, scenario()).await;
    let ctl = sim.control();
    let auth = jamf_auth(&sim);
    assert_eq!(jamf_inventory(&sim, &auth).await.unwrap().len(), 25);
    for (fault, needle) in [
        (FaultKind::PaginationLoop, "repeats id"),
        (FaultKind::DuplicateItems, "repeats id"),
        (FaultKind::ShortPage, "holds 3 of 4 items"),
    ] {
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route("jamf.inventory"));
        let err = jamf_inventory(&sim, &auth).await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{fault:?}: {err}");
        assert!(err.to_string().contains(needle), "{fault:?}: {err}");
    }
}

#[derive(serde::Deserialize)]
struct GraphPage {
    value: Vec<GraphGroup>,
    #[serde(rename = "@odata.nextLink")]
    next: Option<String>,
}

#[derive(serde::Deserialize)]
struct GraphGroup {
    id: String,
}

async fn intune_groups(sim: &RunningSim, auth: &Auth) -> Result<usize, MdmError> {
    let http = http(Provider::Intune);
    let mut first = endpoint(&url(&sim.base_url()), "groups");
    first.query_pairs_mut().append_pair("$top", "3");
    let groups = http
        .pager("list security groups")
        .next_link(
            first,
            |u| {
                let (http, auth) = (&http, auth);
                async move {
                    let p: GraphPage = http.get_json("list security groups", u, auth).await?;
                    Ok(LinkPage {
                        items: p.value,
                        next: p.next,
                    })
                }
            },
            |g: &GraphGroup| g.id.clone(),
        )
        .await?;
    Ok(groups.len())
}

#[tokio::test]
async fn sim_p2_graph_next_links_and_guards() {
    let sim = start(Provider::Intune, scenario()).await;
    let ctl = sim.control();
    let c = sim.credentials();
    let auth = Auth::client_credentials(
        ClientCredentials::new(
            url(&sim.token_url().unwrap()),
            c["client_id"].clone(),
            SecretString::from(c["client_secret"].clone()),
        )
        .with_scope("https://graph.microsoft.com/.default"),
    );
    // 12 security groups + the "All Company" Microsoft 365 group.
    assert_eq!(intune_groups(&sim, &auth).await.unwrap(), 13);
    for fault in [FaultKind::PaginationLoop, FaultKind::DuplicateItems] {
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route("intune.groups"));
        let err = intune_groups(&sim, &auth).await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{fault:?}: {err}");
        assert!(err.to_string().contains("(P2)"), "{err}");
    }
    let id = ctl.add_fault(FaultRule::new(FaultKind::ExpiredPageToken).route("intune.groups"));
    let err = intune_groups(&sim, &auth).await.unwrap_err();
    ctl.remove_fault(id);
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(
        err.to_string().contains("Directory_ExpiredPageToken"),
        "{err}"
    );
}

#[derive(serde::Deserialize)]
struct SimpleMdmPage {
    data: Vec<SimpleMdmGroup>,
    has_more: bool,
}

#[derive(serde::Deserialize)]
struct SimpleMdmGroup {
    id: u64,
}

async fn simplemdm_groups(sim: &RunningSim) -> Result<usize, MdmError> {
    let http = http(Provider::SimpleMdm);
    let auth = Auth::basic_key(SecretString::from(sim.credentials()["api_key"].clone()));
    let base = url(&sim.base_url());
    let groups = http
        .pager("list assignment groups")
        .starting_after(
            |after: Option<u64>| {
                let (http, auth, base) = (&http, &auth, &base);
                async move {
                    let mut req = http
                        .get(
                            "list assignment groups",
                            endpoint(base, "assignment_groups"),
                        )
                        .query(&[("limit", "5")]);
                    if let Some(a) = after {
                        req = req.query(&[("starting_after", &a.to_string())]);
                    }
                    let p: SimpleMdmPage = req.auth(auth).send_json().await?;
                    Ok(HasMorePage {
                        items: p.data,
                        has_more: p.has_more,
                    })
                }
            },
            |g: &SimpleMdmGroup| g.id,
        )
        .await?;
    Ok(groups.len())
}

#[tokio::test]
async fn sim_p2_simplemdm_cursor_and_guards() {
    let sim = start(Provider::SimpleMdm, scenario()).await;
    let ctl = sim.control();
    assert_eq!(simplemdm_groups(&sim).await.unwrap(), 12);
    for fault in [FaultKind::PaginationLoop, FaultKind::DuplicateItems] {
        let id = ctl.add_fault(FaultRule::new(fault.clone()).route("simplemdm.assignment_groups"));
        let err = simplemdm_groups(&sim).await.unwrap_err();
        ctl.remove_fault(id);
        assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{fault:?}: {err}");
        assert!(err.to_string().contains("repeats id"), "{err}");
    }
}

#[derive(serde::Deserialize)]
struct JumpCloudMember {
    id: String,
}

async fn jumpcloud_members(
    sim: &RunningSim,
    group: u64,
    end: PageEnd,
) -> Result<Vec<String>, MdmError> {
    let http = http(Provider::JumpCloud);
    let auth = Auth::x_api_key(SecretString::from(sim.credentials()["api_key"].clone()));
    let path = format!(
        "v2/systemgroups/{}/membership",
        ids::jumpcloud_group_id(group)
    );
    let members_url = endpoint(&url(&sim.base_url()), &path);
    let members = http
        .pager("list system group members")
        .offset(
            2,
            end,
            |skip| {
                let (http, auth, u) = (&http, &auth, &members_url);
                async move {
                    http.get("list system group members", u)
                        .query(&[("limit", "2"), ("skip", &skip.to_string())])
                        .auth(auth)
                        .send_json::<Vec<JumpCloudMember>>()
                        .await
                }
            },
            |m: &JumpCloudMember| m.id.clone(),
        )
        .await?;
    Ok(members.into_iter().map(|m| m.id).collect())
}

#[tokio::test]
async fn sim_p2_jumpcloud_short_pages_need_empty_page_termination() {
    let mut s = scenario();
    s.options.jumpcloud_null_associations = true;
    let group = s
        .groups
        .iter()
        .find(|g| g.members.len() >= 3)
        .expect("a group with 3+ members")
        .clone();
    let sim = start(Provider::JumpCloud, s).await;
    let mut want: Vec<String> = group
        .members
        .iter()
        .map(|d| ids::jumpcloud_system_id(*d))
        .collect();
    want.sort();
    let mut got = jumpcloud_members(&sim, group.id, PageEnd::EmptyPage)
        .await
        .unwrap();
    got.sort();
    assert_eq!(got, want);
    let naive = jumpcloud_members(&sim, group.id, PageEnd::ShortPage)
        .await
        .unwrap();
    assert!(naive.len() < want.len(), "the trap is real: {naive:?}");
    sim.control()
        .add_fault(FaultRule::new(FaultKind::PaginationLoop).route("jumpcloud.membership"));
    let err = jumpcloud_members(&sim, group.id, PageEnd::EmptyPage)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("repeats id"), "{err}");
}

#[derive(serde::Deserialize)]
struct FleetHosts {
    hosts: Vec<FleetHost>,
}

#[derive(serde::Deserialize)]
struct FleetHost {
    id: u64,
}

async fn fleet_label_hosts(sim: &RunningSim, group: u64) -> Result<usize, MdmError> {
    let http = http(Provider::Fleet);
    let auth = Auth::bearer(SecretString::from(sim.credentials()["api_token"].clone()));
    let path = format!("api/v1/fleet/labels/{}/hosts", ids::fleet_label_id(group));
    let u = endpoint(&url(&sim.base_url()), &path);
    let hosts = http
        .pager("list label hosts")
        .numbered(
            2,
            PageEnd::ShortPage,
            |page| {
                let (http, auth, u) = (&http, &auth, &u);
                async move {
                    let p: FleetHosts = http
                        .get("list label hosts", u)
                        .query(&[
                            ("page", &page.to_string()),
                            ("per_page", "2"),
                            ("order_key", "id"),
                        ])
                        .auth(auth)
                        .send_json()
                        .await?;
                    Ok(p.hosts)
                }
            },
            |h: &FleetHost| h.id,
        )
        .await?;
    Ok(hosts.len())
}

#[tokio::test]
async fn sim_p2_fleet_pages_and_guards() {
    let s = scenario();
    let group = s
        .groups
        .iter()
        .find(|g| g.members.len() >= 3)
        .unwrap()
        .clone();
    let sim = start(Provider::Fleet, s).await;
    assert_eq!(
        fleet_label_hosts(&sim, group.id).await.unwrap(),
        group.members.len()
    );
    sim.control()
        .add_fault(FaultRule::new(FaultKind::DuplicateItems).route("fleet.label_hosts"));
    let err = fleet_label_hosts(&sim, group.id).await.unwrap_err();
    assert!(err.to_string().contains("repeats id"), "{err}");
}

#[derive(serde::Deserialize)]
struct IruTags {
    next: Option<String>,
    results: Vec<IruTag>,
}

#[derive(serde::Deserialize)]
struct IruTag {
    id: String,
}

async fn iru_tags(sim: &RunningSim) -> Result<usize, MdmError> {
    let http = http(Provider::Iru);
    let auth = Auth::bearer(SecretString::from(sim.credentials()["api_token"].clone()));
    let mut first = endpoint(&url(&sim.base_url()), "api/v1/tags");
    first.query_pairs_mut().append_pair("search", "");
    let tags = http
        .pager("list tags")
        .next_link(
            first,
            |u| {
                let (http, auth) = (&http, &auth);
                async move {
                    let p: IruTags = http.get_json("list tags", u, auth).await?;
                    Ok(LinkPage {
                        items: p.results,
                        next: p.next,
                    })
                }
            },
            |t: &IruTag| t.id.clone(),
        )
        .await?;
    Ok(tags.len())
}

#[tokio::test]
async fn sim_p2_iru_drf_next_and_guards() {
    let mut s = scenario();
    s.options.iru_tag_page_size = 5;
    let sim = start(Provider::Iru, s).await;
    assert_eq!(iru_tags(&sim).await.unwrap(), 12);
    sim.control()
        .add_fault(FaultRule::new(FaultKind::PaginationLoop).route("iru.tags"));
    let err = iru_tags(&sim).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("(P2)"), "{err}");
}
