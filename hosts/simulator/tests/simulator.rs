//! The simulator's own tests: each provider's auth, pagination defaults and maxima, shapes,
//! every fault kind, the request log, the control API and TLS. Rule numbers refer to
//! shared/spec.md (P2 pagination, P4 tokens, E1 error kinds, E3 TLS, A1 force sync).

use mdmsim::{
    FaultKind, FaultRule, Group, Provider, RunningSim, Scenario, SimOptions, Simulator, ids,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn start(p: Provider, s: Scenario) -> RunningSim {
    Simulator::start(SimOptions::new(p, s)).await.unwrap()
}

/// A minimal authenticated client for one simulator.
struct Api {
    origin: String,
    provider: Provider,
    creds: BTreeMap<String, String>,
    token: Option<String>,
    c: reqwest::Client,
}

impl Api {
    async fn new(sim: &RunningSim) -> Self {
        let c = client();
        let creds = sim.credentials();
        let token = match sim.provider() {
            Provider::Jamf | Provider::Intune => {
                let mut form = vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("client_id", creds["client_id"].clone()),
                    ("client_secret", creds["client_secret"].clone()),
                ];
                if sim.provider() == Provider::Intune {
                    form.push(("scope", "https://graph.microsoft.com/.default".into()));
                }
                let r: Value = c
                    .post(sim.token_url().unwrap())
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                Some(r["access_token"].as_str().unwrap().to_owned())
            }
            _ => None,
        };
        Api {
            origin: sim.origin(),
            provider: sim.provider(),
            creds,
            token,
            c,
        }
    }

    fn auth(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self.provider {
            Provider::Jamf | Provider::Intune => rb.bearer_auth(self.token.as_deref().unwrap()),
            Provider::Iru | Provider::Fleet => rb.bearer_auth(&self.creds["api_token"]),
            Provider::SimpleMdm => rb.basic_auth(&self.creds["api_key"], Some("")),
            Provider::JumpCloud => rb.header("x-api-key", &self.creds["api_key"]),
        }
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_owned()
        } else {
            format!("{}{}", self.origin, path)
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        let mut rb = self.auth(self.c.get(self.url(path)));
        if path.contains("microsoft.graph.device") {
            rb = rb.header("ConsistencyLevel", "eventual");
        }
        rb.send().await.unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    async fn post(&self, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut rb = self.auth(self.c.post(self.url(path)));
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap()
    }
}

fn fleet_small() -> Scenario {
    Scenario::generate(3, 120, 7, 300)
}

fn ids_of(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| match &x[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn snapshot_map(s: &mdmsync_core::Snapshot) -> BTreeMap<String, (String, BTreeSet<String>)> {
    s.groups
        .iter()
        .map(|g| {
            (
                g.id.as_str().to_owned(),
                (
                    g.name.clone(),
                    g.members.iter().map(|m| m.as_str().to_owned()).collect(),
                ),
            )
        })
        .collect()
}

type Fetched = BTreeMap<String, (String, BTreeSet<String>)>;

// ---------------------------------------------------------------------------------------
// Auth

#[tokio::test]
async fn e1_every_provider_refuses_requests_without_credentials() {
    let paths = [
        (Provider::Jamf, "/api/v1/computer-groups"),
        (Provider::Iru, "/api/v1/tags?search="),
        (Provider::SimpleMdm, "/api/v1/assignment_groups"),
        (Provider::Fleet, "/api/v1/fleet/labels"),
        (Provider::JumpCloud, "/api/v2/systemgroups"),
        (Provider::Intune, "/v1.0/groups"),
    ];
    let c = client();
    for (p, path) in paths {
        let sim = start(p, Scenario::sample()).await;
        let r = c
            .get(format!("{}{}", sim.origin(), path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{p:?}");
        let body: Value = r.json().await.unwrap();
        match p {
            Provider::Jamf => assert_eq!(body["errors"][0]["code"], "INVALID_TOKEN"),
            Provider::Iru => assert!(body["detail"].is_string()),
            Provider::SimpleMdm => assert!(body["errors"][0]["title"].is_string()),
            Provider::Fleet => assert_eq!(body["errors"][0]["name"], "base"),
            Provider::JumpCloud => assert_eq!(body["code"], 401),
            Provider::Intune => assert_eq!(body["error"]["code"], "InvalidAuthenticationToken"),
        }
        // A wrong static credential is refused too.
        let wrong = c
            .get(format!("{}{}", sim.origin(), path))
            .bearer_auth("wrong")
            .header("x-api-key", "wrong")
            .basic_auth("wrong", Some(""))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{p:?} wrong credential");
    }
}

#[tokio::test]
async fn p4_oauth_token_errors_follow_rfc6749_and_aadsts() {
    let c = client();
    let jamf = start(Provider::Jamf, Scenario::sample()).await;
    let r = c
        .post(jamf.token_url().unwrap())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "mdmsim-client"),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "invalid_client");
    // The v1 alias issues tokens too.
    let ok: Value = c
        .post(format!("{}/api/v1/oauth/token", jamf.origin()))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "mdmsim-client"),
            ("client_secret", "mdmsim-client-secret"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["expires_in"], 599);
    assert_eq!(ok["token_type"], "Bearer");

    let intune = start(Provider::Intune, Scenario::sample()).await;
    let r = c
        .post(intune.token_url().unwrap())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "mdmsim-client"),
            ("client_secret", "nope"),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["error"], "invalid_client");
    assert_eq!(b["error_codes"][0], 7000215);
    assert!(
        b["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
}

#[tokio::test]
async fn p4_expired_tokens_get_401_and_a_new_token_works() {
    let sim = start(Provider::Jamf, Scenario::sample()).await;
    let api = Api::new(&sim).await;
    assert_eq!(api.get("/api/v1/jamf-pro-version").await.status(), 200);
    sim.control().expire_tokens();
    let r = api.get("/api/v1/jamf-pro-version").await;
    assert_eq!(r.status(), 401);
    let fresh = Api::new(&sim).await;
    assert_eq!(fresh.get("/api/v1/jamf-pro-version").await.status(), 200);
    assert_eq!(sim.control().tokens_issued(), 2);

    let mut s = Scenario::sample();
    s.token_lifetime_secs = Some(1);
    let short = start(Provider::Intune, s).await;
    let api = Api::new(&short).await;
    assert_eq!(api.get("/v1.0/groups").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(api.get("/v1.0/groups").await.status(), 401);
}

// ---------------------------------------------------------------------------------------
// Per provider: pagination, shapes, and a reference snapshot equal to expected_snapshot.

#[tokio::test]
async fn jamf_inventory_pages_default_100_max_2000_and_sweep_matches_expected_snapshot() {
    let scenario = Scenario::generate(5, 250, 9, 600);
    let sim = start(Provider::Jamf, scenario.clone()).await;
    let api = Api::new(&sim).await;
    let first = api.json("/api/v3/computers-inventory").await;
    assert_eq!(first["totalCount"], 250);
    assert_eq!(first["results"].as_array().unwrap().len(), 100);
    assert!(first["results"][0]["general"]["name"].is_string());
    assert!(first["results"][0]["hardware"].is_null());
    let too_big = api.get("/api/v3/computers-inventory?page-size=2001").await;
    assert_eq!(too_big.status(), 400);
    let b: Value = too_big.json().await.unwrap();
    assert_eq!(b["httpStatus"], 400);

    // Full snapshot from groups + GROUP_MEMBERSHIPS sweep (v4, page-size 100).
    let groups = api.json("/api/v1/computer-groups").await;
    let mut got: Fetched = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["id"].as_str().unwrap().to_owned(),
                (g["name"].as_str().unwrap().to_owned(), BTreeSet::new()),
            )
        })
        .collect();
    let mut page = 0;
    loop {
        let v = api
            .json(&format!(
                "/api/v4/computers-inventory?section=GENERAL&section=GROUP_MEMBERSHIPS&page={page}&page-size=100&sort=id:asc"
            ))
            .await;
        let rows = v["results"].as_array().unwrap();
        for c in rows {
            assert!(
                c["general"]["lastContact"].is_string(),
                "v4 renames lastContactTime"
            );
            for m in c["groupMemberships"].as_array().unwrap() {
                got.get_mut(m["groupId"].as_str().unwrap())
                    .unwrap()
                    .1
                    .insert(c["id"].as_str().unwrap().to_owned());
            }
        }
        page += 1;
        if rows.is_empty() || page * 100 >= v["totalCount"].as_u64().unwrap() as usize {
            break;
        }
    }
    assert_eq!(
        got,
        snapshot_map(&scenario.expected_snapshot(Provider::Jamf))
    );
    assert_eq!(
        sim.control()
            .requests()
            .iter()
            .filter(|r| r.route.as_deref() == Some("jamf.inventory"))
            .filter_map(|r| r.page_size)
            .collect::<Vec<_>>(),
        vec![2001, 100, 100, 100]
    );

    // Smart membership is ints; Classic has int ids; serial filter; blank push (A1).
    let smart = scenario.groups.iter().find(|g| g.smart).unwrap();
    let m = api
        .json(&format!(
            "/api/v3/computer-groups/smart-group-membership/{}",
            smart.id
        ))
        .await;
    assert!(m["members"].as_array().unwrap().iter().all(Value::is_u64));
    let static_g = scenario.groups.iter().find(|g| !g.smart).unwrap();
    let classic = api
        .json(&format!("/JSSResource/computergroups/id/{}", static_g.id))
        .await;
    assert!(classic["computer_group"]["computers"][0]["id"].is_u64());
    let dev = &scenario.devices[7];
    let serial = dev.serial_number.clone().unwrap();
    let found = api
        .json(&format!(
            "/api/v3/computers-inventory?section=HARDWARE&filter=hardware.serialNumber%3D%3D%22{serial}%22"
        ))
        .await;
    assert_eq!(found["totalCount"], 1);
    assert_eq!(found["results"][0]["id"], dev.id.to_string());
    let push = api
        .post(
            "/api/v2/mdm/blank-push",
            Some(json!({"clientManagementIds": [ids::jamf_management_id(dev.id), "nope"]})),
        )
        .await;
    assert_eq!(push.status(), 200);
    let b: Value = push.json().await.unwrap();
    assert_eq!(b["errorUuids"], json!(["nope"]));
    assert_eq!(sim.control().force_syncs()[0].device, dev.id);
}

#[tokio::test]
async fn intune_graph_pages_default_100_max_999_and_join_matches_expected_snapshot() {
    let mut scenario = Scenario::generate(6, 260, 130, 700);
    scenario.devices[0].kiosk = true;
    scenario.groups[0].members.push(1);
    let sim = start(Provider::Intune, scenario.clone()).await;
    let api = Api::new(&sim).await;
    let first = api
        .json("/v1.0/groups?$filter=securityEnabled eq true")
        .await;
    assert_eq!(first["value"].as_array().unwrap().len(), 100);
    assert!(
        first["@odata.nextLink"]
            .as_str()
            .unwrap()
            .contains("$skiptoken=")
    );
    assert_eq!(api.get("/v1.0/groups?$top=1000").await.status(), 400);
    // The Microsoft 365 group is there unless filtered out.
    let unfiltered = api.json("/v1.0/groups?$top=999").await;
    assert_eq!(unfiltered["value"].as_array().unwrap().len(), 131);

    // Cast without ConsistencyLevel/$count is refused.
    let g0 = ids::intune_group_id(scenario.groups[0].id);
    let r = api
        .auth(api.c.get(format!(
            "{}/v1.0/groups/{g0}/transitiveMembers/microsoft.graph.device",
            api.origin
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Managed devices: join Entra deviceId -> managedDevice.id.
    let mut join = BTreeMap::new();
    let mut url = "/v1.0/deviceManagement/managedDevices?$top=100".to_owned();
    loop {
        let v = api.json(&url).await;
        for d in v["value"].as_array().unwrap() {
            let aad = d["azureADDeviceId"].as_str().unwrap().to_owned();
            if aad != ids::ZERO_GUID {
                join.insert(aad, d["id"].as_str().unwrap().to_owned());
            }
        }
        match v["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    let registered = scenario.devices.iter().filter(|d| !d.kiosk).count();
    assert_eq!(join.len(), registered, "kiosk devices have the zero GUID");
    assert!(registered < 260);
    let mut got = Fetched::new();
    let mut url =
        "/v1.0/groups?$filter=securityEnabled eq true&$select=id,displayName&$top=999".to_owned();
    loop {
        let v = api.json(&url).await;
        for g in v["value"].as_array().unwrap() {
            let gid = g["id"].as_str().unwrap().to_owned();
            let mut members = BTreeSet::new();
            let mut murl = format!(
                "/v1.0/groups/{gid}/transitiveMembers/microsoft.graph.device?$count=true&$select=id,deviceId&$top=3"
            );
            loop {
                let mv = api.json(&murl).await;
                for m in mv["value"].as_array().unwrap() {
                    members.insert(join[m["deviceId"].as_str().unwrap()].clone());
                }
                match mv["@odata.nextLink"].as_str() {
                    Some(n) => murl = n.to_owned(),
                    None => break,
                }
            }
            got.insert(
                gid,
                (g["displayName"].as_str().unwrap().to_owned(), members),
            );
        }
        match v["@odata.nextLink"].as_str() {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    assert_eq!(
        got,
        snapshot_map(&scenario.expected_snapshot(Provider::Intune))
    );

    // Serial filter, syncDevice (A1).
    let d = &scenario.devices[4];
    let serial = d.serial_number.clone().unwrap();
    let v = api
        .json(&format!(
            "/v1.0/deviceManagement/managedDevices?$filter=serialNumber eq '{serial}'"
        ))
        .await;
    assert_eq!(v["value"][0]["id"], ids::intune_managed_device_id(d.id));
    let r = api
        .post(
            &format!(
                "/v1.0/deviceManagement/managedDevices/{}/syncDevice",
                ids::intune_managed_device_id(d.id)
            ),
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(sim.control().force_syncs()[0].device, d.id);
}

#[tokio::test]
async fn intune_without_device_read_all_members_have_null_device_ids() {
    let mut s = Scenario::sample();
    s.options.intune_device_read_all = false;
    let sim = start(Provider::Intune, s).await;
    let api = Api::new(&sim).await;
    let v = api
        .json(&format!(
            "/v1.0/groups/{}/members/microsoft.graph.device?$count=true",
            ids::intune_group_id(1)
        ))
        .await;
    let items = v["value"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(
        items
            .iter()
            .all(|m| m["deviceId"].is_null() && m["id"].is_string())
    );
}

#[tokio::test]
async fn iru_tags_follow_next_urls_and_devices_cap_limit_at_300() {
    let mut scenario = fleet_small();
    scenario.options.iru_tag_page_size = 3;
    scenario.devices[2].user = None;
    let sim = start(Provider::Iru, scenario.clone()).await;
    let api = Api::new(&sim).await;
    assert_eq!(api.get("/api/v1/devices?limit=301").await.status(), 400);
    assert_eq!(
        api.json("/api/v1/devices?limit=300")
            .await
            .as_array()
            .unwrap()
            .len(),
        120
    );
    let mut tags = Vec::new();
    let mut url = "/api/v1/tags?search=".to_owned();
    loop {
        let v = api.json(&url).await;
        assert_eq!(v["count"], 7);
        tags.extend(v["results"].as_array().unwrap().iter().cloned());
        match v["next"].as_str() {
            Some(n) => {
                assert!(n.starts_with("http://127.0.0.1:"), "next is absolute");
                url = n.to_owned();
            }
            None => break,
        }
    }
    assert_eq!(tags.len(), 7);
    let mut got = Fetched::new();
    for t in &tags {
        let id = t["id"].as_str().unwrap();
        let mut members = BTreeSet::new();
        let mut offset = 0;
        loop {
            let v = api
                .json(&format!(
                    "/api/v1/devices?tag_id={id}&limit=7&offset={offset}"
                ))
                .await;
            let page = v.as_array().unwrap();
            members.extend(ids_of(&v, "device_id"));
            if page.len() < 7 {
                break;
            }
            offset += 7;
        }
        got.insert(
            id.to_owned(),
            (t["name"].as_str().unwrap().to_owned(), members),
        );
    }
    assert_eq!(
        got,
        snapshot_map(&scenario.expected_snapshot(Provider::Iru))
    );
    let d = api
        .json(&format!(
            "/api/v1/devices?serial_number={}&limit=1",
            scenario.devices[2].serial_number.as_deref().unwrap()
        ))
        .await;
    assert_eq!(d[0]["user"], "", "unassigned user is the empty string");
    let r = api
        .post(
            &format!("/api/v1/devices/{}/action/blankpush", ids::iru_device_id(3)),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = api
        .post("/api/v1/devices/nope/action/blankpush", None)
        .await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn simplemdm_cursor_pages_default_10_max_100() {
    let scenario = Scenario::generate(4, 60, 23, 200);
    let sim = start(Provider::SimpleMdm, scenario.clone()).await;
    let api = Api::new(&sim).await;
    assert_eq!(api.json("/api/v1/account").await["data"]["type"], "account");
    let first = api.json("/api/v1/assignment_groups").await;
    assert_eq!(first["data"].as_array().unwrap().len(), 10);
    assert_eq!(first["has_more"], true);
    assert_eq!(
        api.get("/api/v1/assignment_groups?limit=101")
            .await
            .status(),
        400
    );
    let mut got = Fetched::new();
    let mut after: Option<u64> = None;
    loop {
        let url = match after {
            Some(a) => format!("/api/v1/assignment_groups?limit=7&starting_after={a}"),
            None => "/api/v1/assignment_groups?limit=7".to_owned(),
        };
        let v = api.json(&url).await;
        for g in v["data"].as_array().unwrap() {
            assert_eq!(g["type"], "assignment_group");
            let members = ids_of(&g["relationships"]["devices"]["data"], "id");
            got.insert(
                g["id"].to_string(),
                (
                    g["attributes"]["name"].as_str().unwrap().to_owned(),
                    members.into_iter().collect(),
                ),
            );
            after = g["id"].as_u64();
        }
        if v["has_more"] != true {
            break;
        }
    }
    assert_eq!(
        got,
        snapshot_map(&scenario.expected_snapshot(Provider::SimpleMdm))
    );
    let serial = scenario.devices[9].serial_number.clone().unwrap();
    let v = api.json(&format!("/api/v1/devices?search={serial}")).await;
    assert_eq!(v["data"][0]["id"], 10);
    assert_eq!(v["data"][0]["attributes"]["serial_number"], serial.as_str());
    assert_eq!(
        api.post("/api/v1/devices/10/refresh", None).await.status(),
        202
    );
}

#[tokio::test]
async fn fleet_labels_include_builtins_and_label_hosts_default_to_20_per_page() {
    let scenario = fleet_small();
    let sim = start(Provider::Fleet, scenario.clone()).await;
    let api = Api::new(&sim).await;
    assert!(api.json("/api/v1/fleet/me").await["user"]["global_role"].is_string());
    let labels = api.json("/api/v1/fleet/labels").await;
    let labels = labels["labels"].as_array().unwrap();
    assert_eq!(
        labels
            .iter()
            .filter(|l| l["label_type"] == "builtin")
            .count(),
        6
    );
    let all_hosts = api.json("/api/v1/fleet/labels/1/hosts").await;
    assert_eq!(all_hosts["hosts"].as_array().unwrap().len(), 20);
    let mut got = Fetched::new();
    for l in labels.iter().filter(|l| l["label_type"] == "regular") {
        let id = l["id"].as_u64().unwrap();
        let mut members = BTreeSet::new();
        let mut page = 0;
        loop {
            let v = api
                .json(&format!(
                    "/api/v1/fleet/labels/{id}/hosts?page={page}&per_page=6&order_key=id"
                ))
                .await;
            let hosts = v["hosts"].as_array().unwrap();
            members.extend(ids_of(&v["hosts"], "id"));
            if hosts.len() < 6 {
                break;
            }
            page += 1;
        }
        got.insert(
            id.to_string(),
            (l["name"].as_str().unwrap().to_owned(), members),
        );
    }
    assert_eq!(
        got,
        snapshot_map(&scenario.expected_snapshot(Provider::Fleet))
    );
    let d = scenario.devices.iter().find(|d| d.user.is_some()).unwrap();
    let h = api
        .json(&format!(
            "/api/v1/fleet/hosts/identifier/{}",
            d.serial_number.as_deref().unwrap()
        ))
        .await;
    assert_eq!(h["host"]["id"], d.id);
    assert_eq!(
        h["host"]["end_users"][0]["idp_full_name"],
        d.user.as_ref().unwrap().name.as_str()
    );
    assert_eq!(
        api.post(&format!("/api/v1/fleet/hosts/{}/refetch", d.id), None)
            .await
            .status(),
        200
    );
    let nf = api.get("/api/v1/fleet/hosts/999999").await;
    assert_eq!(nf.status(), 404);
    assert_eq!(
        nf.json::<Value>().await.unwrap()["errors"][0]["name"],
        "base"
    );
}

#[tokio::test]
async fn jumpcloud_limit_default_10_max_100_and_null_associations_make_short_pages() {
    let mut scenario = fleet_small();
    scenario.options.jumpcloud_null_associations = true;
    scenario.groups[0].members = (1..=25).collect();
    let sim = start(Provider::JumpCloud, scenario.clone()).await;
    let api = Api::new(&sim).await;
    assert_eq!(
        api.json("/api/v2/systemgroups?limit=5")
            .await
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        api.json("/api/v2/systemgroups")
            .await
            .as_array()
            .unwrap()
            .len(),
        7
    );
    assert_eq!(
        api.get("/api/v2/systemgroups?limit=101").await.status(),
        400
    );
    let gid = ids::jumpcloud_group_id(scenario.groups[0].id);
    let default = api
        .json(&format!("/api/v2/systemgroups/{gid}/membership"))
        .await;
    assert_eq!(
        default.as_array().unwrap().len(),
        9,
        "10 associations, one null"
    );
    // Stopping on a short page would truncate; paging until an empty page gets everything.
    let mut members = BTreeSet::new();
    let mut skip = 0;
    loop {
        let v = api
            .json(&format!(
                "/api/v2/systemgroups/{gid}/membership?limit=10&skip={skip}"
            ))
            .await;
        if v.as_array().unwrap().is_empty() {
            break;
        }
        assert!(v.as_array().unwrap().iter().all(|m| m["type"] == "system"));
        members.extend(ids_of(&v, "id"));
        skip += 10;
    }
    assert_eq!(members.len(), 25);
    let d = &scenario.devices[3];
    let v = api
        .json(&format!(
            "/api/systems?filter=serialNumber:$eq:{}",
            d.serial_number.as_deref().unwrap()
        ))
        .await;
    assert_eq!(v["totalCount"], 1);
    assert_eq!(v["results"][0]["_id"], ids::jumpcloud_system_id(d.id));
    let all = api.json("/api/systems").await;
    assert_eq!(all["results"].as_array().unwrap().len(), 10);
    assert_eq!(all["totalCount"], 120);
    let with_user = scenario.devices.iter().find(|d| d.user.is_some()).unwrap();
    let sys = api
        .json(&format!(
            "/api/systems/{}",
            ids::jumpcloud_system_id(with_user.id)
        ))
        .await;
    let uid = sys["primarySystemUser"]["id"].as_str().unwrap();
    let u = api.json(&format!("/api/systemusers/{uid}")).await;
    assert_eq!(
        u["displayname"],
        with_user.user.as_ref().unwrap().name.as_str()
    );
}

#[tokio::test]
async fn jumpcloud_org_id_is_required_when_configured() {
    let mut s = Scenario::sample();
    s.credentials.org_id = Some("org-1".into());
    let sim = start(Provider::JumpCloud, s).await;
    let api = Api::new(&sim).await;
    assert_eq!(api.get("/api/v2/systemgroups").await.status(), 401);
    let r = api
        .auth(api.c.get(format!("{}/api/v2/systemgroups", api.origin)))
        .header("x-org-id", "org-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------------------
// Faults

#[tokio::test]
async fn e1_status_faults_use_the_provider_error_shape_and_count_down() {
    let sim = start(Provider::Jamf, Scenario::sample()).await;
    let ctl = sim.control();
    let api = Api::new(&sim).await;
    for (kind, status) in [
        (FaultKind::Unauthorized, 401),
        (FaultKind::Forbidden, 403),
        (FaultKind::NotFound, 404),
        (FaultKind::InternalServerError, 500),
        (
            FaultKind::ServiceUnavailable {
                retry_after_secs: Some(3),
            },
            503,
        ),
        (
            FaultKind::Status {
                status: 504,
                retry_after_secs: None,
            },
            504,
        ),
    ] {
        ctl.add_fault(FaultRule::new(kind).route("jamf.groups").times(1));
        let r = api.get("/api/v1/computer-groups").await;
        assert_eq!(r.status(), status);
        let b: Value = r.json().await.unwrap();
        assert_eq!(b["httpStatus"], status);
        assert_eq!(
            api.get("/api/v1/computer-groups").await.status(),
            200,
            "times(1)"
        );
    }
    assert!(ctl.faults().is_empty());
    let log = ctl.requests();
    assert_eq!(
        log.iter().filter(|r| r.fault.is_some()).count(),
        6,
        "every faulted request is marked in the log"
    );
}

#[tokio::test]
async fn e2_too_many_requests_carries_retry_after() {
    for p in [
        Provider::Intune,
        Provider::Fleet,
        Provider::Iru,
        Provider::Jamf,
    ] {
        let sim = start(p, Scenario::sample()).await;
        sim.control().add_fault(
            FaultRule::new(FaultKind::TooManyRequests {
                retry_after_secs: 7,
            })
            .times(1),
        );
        let r = client()
            .get(format!("{}/anything", sim.origin()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{p:?}");
        assert_eq!(r.headers()["retry-after"], "7");
    }
}

#[tokio::test]
async fn delay_fault_outlasts_a_client_timeout() {
    let sim = start(Provider::Fleet, Scenario::sample()).await;
    sim.control().add_fault(
        FaultRule::new(FaultKind::Delay { millis: 1500 })
            .path("/api/v1/fleet/labels")
            .times(1),
    );
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = c
        .get(format!("{}/api/v1/fleet/labels", sim.origin()))
        .bearer_auth("mdmsim-api-token")
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
}

#[tokio::test]
async fn malformed_and_truncated_json_do_not_parse() {
    let sim = start(Provider::SimpleMdm, Scenario::sample()).await;
    let api = Api::new(&sim).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::MalformedJson).times(1));
    let r = api.get("/api/v1/assignment_groups").await;
    assert_eq!(r.status(), 200);
    assert!(r.json::<Value>().await.is_err());
    ctl.add_fault(FaultRule::new(FaultKind::TruncatedJson).times(1));
    let r = api.get("/api/v1/assignment_groups").await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.starts_with("{\"data\""));
    assert!(serde_json::from_str::<Value>(&text).is_err());
}

#[tokio::test]
async fn p2_pagination_loop_points_the_next_link_back() {
    let sim = start(Provider::Intune, fleet_small()).await;
    let api = Api::new(&sim).await;
    sim.control()
        .add_fault(FaultRule::new(FaultKind::PaginationLoop).route("intune.managed_devices"));
    let p1 = api
        .json("/v1.0/deviceManagement/managedDevices?$top=50")
        .await;
    let next1 = p1["@odata.nextLink"].as_str().unwrap().to_owned();
    let p2 = api.json(&next1).await;
    assert_eq!(
        p2["@odata.nextLink"].as_str().unwrap(),
        next1,
        "cursor repeats"
    );
    assert_eq!(p2["value"], p1["value"]);
    // Other styles: SimpleMDM serves the first page again with has_more.
    let s = start(Provider::SimpleMdm, fleet_small()).await;
    let api = Api::new(&s).await;
    s.control()
        .add_fault(FaultRule::new(FaultKind::PaginationLoop));
    let a = api.json("/api/v1/devices?limit=5").await;
    let b = api
        .json(&format!(
            "/api/v1/devices?limit=5&starting_after={}",
            a["data"][4]["id"]
        ))
        .await;
    assert_eq!(a, b);
}

#[tokio::test]
async fn p2_duplicate_items_repeat_across_pages_and_short_pages_drop_one() {
    let sim = start(Provider::JumpCloud, fleet_small()).await;
    let api = Api::new(&sim).await;
    let ctl = sim.control();
    let fid = ctl.add_fault(FaultRule::new(FaultKind::DuplicateItems).route("jumpcloud.systems"));
    let a = api.json("/api/systems?limit=10&skip=0").await;
    let b = api.json("/api/systems?limit=10&skip=10").await;
    assert_eq!(a["results"][9]["_id"], b["results"][0]["_id"]);
    assert!(ctl.remove_fault(fid));
    ctl.add_fault(
        FaultRule::new(FaultKind::ShortPage)
            .route("jumpcloud.systems")
            .times(1),
    );
    let short = api.json("/api/systems?limit=10&skip=10").await;
    assert_eq!(short["results"].as_array().unwrap().len(), 9);
    let next = api.json("/api/systems?limit=10&skip=20").await;
    assert_eq!(
        next["results"].as_array().unwrap().len(),
        10,
        "later pages still served"
    );
}

#[tokio::test]
async fn dropped_connection_sends_no_response() {
    let sim = start(Provider::Iru, Scenario::sample()).await;
    let api = Api::new(&sim).await;
    sim.control().add_fault(
        FaultRule::new(FaultKind::DropConnection)
            .method("GET")
            .times(1),
    );
    let e = api
        .auth(api.c.get(format!("{}/api/v1/tags?search=", api.origin)))
        .send()
        .await
        .unwrap_err();
    assert!(!e.is_timeout() && !e.is_status(), "{e}");
    let log = sim.control().requests();
    assert_eq!(log[0].status, None);
    assert_eq!(log[0].fault.as_deref(), Some("drop_connection"));
    assert_eq!(api.get("/api/v1/tags?search=").await.status(), 200);
}

#[tokio::test]
async fn empty_group_list_and_expired_page_token_faults() {
    let sim = start(Provider::Intune, fleet_small()).await;
    let api = Api::new(&sim).await;
    let ctl = sim.control();
    ctl.add_fault(FaultRule::new(FaultKind::EmptyGroupList).times(1));
    let v = api.json("/v1.0/groups").await;
    assert!(v["value"].as_array().unwrap().is_empty());
    ctl.add_fault(FaultRule::new(FaultKind::ExpiredPageToken).times(1));
    let first = api
        .json("/v1.0/deviceManagement/managedDevices?$top=10")
        .await;
    let r = api.get(first["@odata.nextLink"].as_str().unwrap()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "Directory_ExpiredPageToken"
    );
}

// ---------------------------------------------------------------------------------------
// Request log, concurrency, control API, TLS

#[tokio::test]
async fn p5_log_records_page_sizes_concurrency_and_no_secret_in_urls() {
    let sim = start(Provider::JumpCloud, fleet_small()).await;
    let api = Api::new(&sim).await;
    sim.control()
        .add_fault(FaultRule::new(FaultKind::Delay { millis: 400 }).times(5));
    let urls: Vec<String> = (0..5)
        .map(|i| format!("/api/systems?limit={}", 20 + i))
        .collect();
    for r in futures::future::join_all(urls.iter().map(|u| api.get(u))).await {
        assert_eq!(r.status(), 200);
    }
    let ctl = sim.control();
    assert_eq!(ctl.max_in_flight(), 5);
    let mut sizes: Vec<u64> = ctl.requests().iter().filter_map(|r| r.page_size).collect();
    sizes.sort();
    assert_eq!(sizes, vec![20, 21, 22, 23, 24]);
    for r in ctl.requests() {
        assert!(!r.query.contains("mdmsim-api-key") && !r.path.contains("mdmsim-api-key"));
        assert!(r.finished >= r.started);
    }
    assert_eq!(ctl.stats().requests, 5);
}

#[tokio::test]
async fn g2_control_api_changes_the_scenario_between_syncs() {
    let sim = start(Provider::Fleet, Scenario::sample()).await;
    let api = Api::new(&sim).await;
    let c = client();
    let o = sim.origin();
    // Rename, add, remove, move over HTTP.
    let r = c
        .patch(format!("{o}/_sim/groups/1"))
        .json(&json!({"name": "Platform"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .post(format!("{o}/_sim/groups"))
        .json(&json!({"id": 9, "name": "New", "members": [3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = c.delete(format!("{o}/_sim/groups/3")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = c
        .post(format!("{o}/_sim/devices/4/move"))
        .json(&json!({"from": 1, "to": 9}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let bad = c
        .put(format!("{o}/_sim/groups/9/members"))
        .json(&json!([42]))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "unknown device is refused");
    let labels = api.json("/api/v1/fleet/labels").await;
    let names: BTreeSet<&str> = labels["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["label_type"] == "regular")
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, BTreeSet::from(["Platform", "All Laptops", "New"]));
    let hosts = api.json("/api/v1/fleet/labels/109/hosts?per_page=10").await;
    assert_eq!(ids_of(&hosts["hosts"], "id"), vec!["3", "4"]);
    // Faults and the log over HTTP.
    let r = c
        .post(format!("{o}/_sim/faults"))
        .json(&json!({"kind": "too_many_requests", "retry_after_secs": 1, "route": "fleet.me", "times": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(api.get("/api/v1/fleet/me").await.status(), 429);
    let log: Value = c
        .get(format!("{o}/_sim/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(log.as_array().unwrap().last().unwrap()["status"], 429);
    // Rust side.
    let ctl = sim.control();
    ctl.add_group(Group {
        id: 20,
        name: "Rust".into(),
        smart: true,
        members: vec![],
    })
    .unwrap();
    assert!(
        ctl.add_group(Group {
            id: 20,
            name: "dup".into(),
            smart: false,
            members: vec![],
        })
        .is_err()
    );
    ctl.rename_group(20, "Rusty").unwrap();
    ctl.replace_scenario(Scenario::default()).unwrap();
    let labels = api.json("/api/v1/fleet/labels").await;
    assert_eq!(
        labels["labels"].as_array().unwrap().len(),
        6,
        "builtins only"
    );
}

#[tokio::test]
async fn e3_tls_works_with_the_ca_added_and_fails_without_it() {
    let sim = Simulator::start(SimOptions::new(Provider::Fleet, Scenario::sample()).with_tls())
        .await
        .unwrap();
    assert!(sim.origin().starts_with("https://127.0.0.1:"));
    let pem = sim.ca_cert_pem().unwrap();
    let with_ca = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for host in [sim.origin(), sim.origin().replace("127.0.0.1", "localhost")] {
        let r = with_ca
            .get(format!("{host}/api/v1/fleet/me"))
            .bearer_auth("mdmsim-api-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let e = client()
        .get(format!("{}/api/v1/fleet/me", sim.origin()))
        .send()
        .await
        .unwrap_err();
    let mut chain = String::new();
    let mut src: Option<&dyn std::error::Error> = Some(&e);
    while let Some(s) = src {
        chain.push_str(&s.to_string());
        chain.push('|');
        src = s.source();
    }
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
}

#[tokio::test]
async fn only_loopback_binds_are_allowed() {
    let mut o = SimOptions::new(Provider::Jamf, Scenario::sample());
    o.bind = "0.0.0.0:0".parse().unwrap();
    assert!(matches!(
        Simulator::start(o).await,
        Err(mdmsim::SimError::NotLoopback(_))
    ));
}

#[tokio::test]
async fn big_generated_fleet_is_served() {
    let s = Scenario::generate(42, 20_000, 400, 40_000);
    let sim = start(Provider::Jamf, s).await;
    let api = Api::new(&sim).await;
    let v = api
        .json("/api/v3/computers-inventory?page=9&page-size=2000&section=GROUP_MEMBERSHIPS")
        .await;
    assert_eq!(v["totalCount"], 20_000);
    assert_eq!(v["results"].as_array().unwrap().len(), 2000);
    assert_eq!(v["results"][1999]["id"], "20000");
}

#[tokio::test]
async fn binary_prints_its_address_first_and_reads_toml_scenarios() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(
        &file,
        "[[devices]]\nid = 1\nserial_number = \"C02TOML00001\"\ndevice_name = \"Mac\"\n\n[[groups]]\nid = 4\nname = \"From TOML\"\nmembers = [1]\n",
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mdmsim"))
        .args(["--provider", "simplemdm", "--port", "0", "--scenario"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let origin = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {line:?}"))
        .to_owned();
    assert!(origin.starts_with("http://127.0.0.1:"));
    let v: Value = client()
        .get(format!("{origin}/api/v1/assignment_groups"))
        .basic_auth("mdmsim-api-key", Some(""))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(v["data"][0]["attributes"]["name"], "From TOML");
    assert_eq!(v["data"][0]["id"], 4);
}
