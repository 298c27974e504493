//! The admin API served in-process on 127.0.0.1 over a real SQLite file, scripted MDMs and a
//! manual clock: bearer token (401), T2 cooldown (429 + Retry-After), T4 (409), G1 (422),
//! G11 confirmation, the status, groups, history and metrics documents.

mod common;

use chrono::TimeDelta;
use common::{World, config, eventually};
use mdmsync_core::{Actor, Command, MdmDeviceId, MdmMetadata, Plan, Provider, Snapshot};
use mdmsync_daemon::{AdminToken, ApiState, Scheduler, router};
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Semaphore;

const TOKEN: &str = "test-admin-token-0123456789";

struct Api {
    base: String,
    http: reqwest::Client,
    scheduler: Scheduler,
}

impl Api {
    async fn start(w: &World) -> Self {
        let (scheduler, metrics) = w.scheduler(config(4, 4));
        scheduler.poll_log().await.unwrap();
        let app = router(ApiState {
            scheduler: scheduler.clone(),
            store: mdmsync_sqlite::SqliteEventStore::open(&w.path).unwrap(),
            token: Arc::new(AdminToken::new(&SecretString::from(TOKEN))),
            default_caller: "admin-api".into(),
            metrics,
            manual_wait: std::time::Duration::from_secs(30),
            clock: w.clock.clone(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            scheduler,
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    async fn json(&self, path: &str) -> Value {
        let r = self.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.json().await.unwrap()
    }
}

/// A Pro workspace on Jamf with device `S1` matched to MDM device `m1`.
async fn connected(w: &World, gate: Option<Arc<Semaphore>>) -> mdmsync_core::WorkspaceId {
    let ws = w.create("Acme", Plan::Pro).await;
    let client = w.connect(ws, Provider::Jamf, "acme.test", gate).await;
    client.fake.set_snapshot(
        Snapshot::new(Provider::Jamf)
            .with_group("1", "Engineering", ["m1"])
            .with_group("2", "Sales", Vec::<String>::new())
            .with_group("3", "Ops", Vec::<String>::new())
            .with_group("4", "Legal", Vec::<String>::new()),
    );
    let device = w.device(ws, Some("S1")).await;
    w.cli
        .execute(
            ws,
            Command::RecordDeviceMetadata {
                device_id: device,
                metadata: Some(MdmMetadata {
                    mdm_device_id: MdmDeviceId::new("m1"),
                    mdm_user_id: None,
                    mdm_display_name: Some("Ada".into()),
                    console_url: None,
                }),
                ambiguous_candidates: 0,
            },
            Actor::Operator("test".into()),
        )
        .await
        .unwrap();
    ws
}

#[tokio::test]
async fn api_refuses_a_missing_or_wrong_token_with_401_healthz_is_open() {
    let w = World::new();
    let api = Api::start(&w).await;
    let url = |p: &str| format!("{}{p}", api.base);
    for path in ["/workspaces", "/metrics", "/workspaces/x/groups", "/nope"] {
        let r = api.http.get(url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} without token");
        assert_eq!(
            r.headers()["www-authenticate"],
            "Bearer realm=\"mdmsyncd\"",
            "{path}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized");
    }
    let wrong = api
        .http
        .get(url("/workspaces"))
        .bearer_auth("test-admin-token-012345678X")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let basic = api
        .http
        .get(url("/workspaces"))
        .header("authorization", format!("Basic {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let post = api
        .http
        .post(url("/workspaces/00000000-0000-0000-0000-000000000001/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::UNAUTHORIZED);

    let ok = api.get("/workspaces").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let lower = api
        .http
        .get(url("/workspaces"))
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        lower.status(),
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
    assert_eq!(
        api.get("/nope").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    let health = api.http.get(url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let metrics = api.get("/metrics").send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.text().await.unwrap();
    assert!(text.contains("mdmsyncd_api_unauthorized_total 7"), "{text}");
}

#[tokio::test]
async fn t2_a_manual_sync_runs_once_then_429_with_retry_after_force_bypasses() {
    let w = World::new();
    let ws = connected(&w, None).await;
    let api = Api::start(&w).await;
    let path = format!("/workspaces/{ws}/sync");

    let r = api.post(&path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "finished");
    assert_eq!(body["outcome"], "succeeded");
    assert_eq!(body["report"]["created"], 4);
    assert_eq!(body["report"]["members_added"], 1);
    let first_sync = body["sync_id"].as_str().unwrap().to_owned();

    w.advance(TimeDelta::minutes(5));
    let r = api.post(&path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "600");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "cooldown");
    assert_eq!(body["retry_after_secs"], 600);
    assert_eq!(
        body["retry_after"],
        serde_json::to_value(w.now() + TimeDelta::minutes(10)).unwrap()
    );

    // The operator's bypass, under a caller name of its own (G12).
    let r = api
        .post(&format!("{path}?force=true"))
        .header("x-mdmsync-caller", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["outcome"], "succeeded");
    assert_ne!(body["sync_id"].as_str().unwrap(), first_sync);

    let status = api.json(&format!("/workspaces/{ws}")).await;
    assert_eq!(status["last_sync"]["trigger"], "forced_manual");
    let history = api.json(&format!("/workspaces/{ws}/history")).await;
    let ends: Vec<(&str, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "SyncSucceeded")
        .map(|e| {
            (
                e["actor"].as_str().unwrap(),
                e["data"]["trigger"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ends,
        [("api:admin-api", "manual"), ("api:alice", "forced_manual")]
    );
    // A bad caller name is refused, not recorded.
    let r = api
        .post(&format!("{path}?force=true"))
        .header("x-mdmsync-caller", "a b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn t4_a_manual_sync_while_one_runs_is_409() {
    let w = World::new();
    let gate = Arc::new(Semaphore::new(0));
    let ws = connected(&w, Some(gate.clone())).await;
    let api = Api::start(&w).await;
    let path = format!("/workspaces/{ws}/sync");
    let r = api
        .post(&format!("{path}?wait=false"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "accepted");
    let tracker = w.tracker.clone();
    eventually("fetching", || tracker.in_flight() == 1).await;
    let r = api.post(&path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "sync_running");
    assert_eq!(
        api.json(&format!("/workspaces/{ws}")).await["running"],
        true
    );
    gate.add_permits(1);
    api.scheduler.wait_idle().await;
    assert_eq!(w.sync_ends(ws).await.len(), 1);
}

#[tokio::test]
async fn g1_free_plan_and_unconnected_workspaces_get_422_unknown_404_bad_id_400() {
    let w = World::new();
    let free = w.create("Free", Plan::Free).await;
    w.connect(free, Provider::Fleet, "fleet.test", None).await;
    let bare = w.create("Bare", Plan::Pro).await;
    let api = Api::start(&w).await;
    let r = api
        .post(&format!("/workspaces/{free}/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "plan_does_not_sync_groups"
    );
    let r = api
        .post(&format!("/workspaces/{bare}/sync"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_connected");
    let unknown = "00000000-0000-0000-0000-00000000dead";
    for path in [
        format!("/workspaces/{unknown}"),
        format!("/workspaces/{unknown}/groups"),
        format!("/workspaces/{unknown}/history"),
    ] {
        assert_eq!(
            api.get(&path).send().await.unwrap().status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(
        api.post(&format!("/workspaces/{unknown}/sync"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.get("/workspaces/not-a-uuid")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let list = api.json("/workspaces").await;
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Bare", "Free"]);
}

#[tokio::test]
async fn status_groups_and_history_documents() {
    let w = World::new();
    let ws = connected(&w, None).await;
    let api = Api::start(&w).await;
    let before = api.json(&format!("/workspaces/{ws}")).await;
    assert_eq!(before["last_sync"], Value::Null);
    assert_eq!(
        before["next_scheduled_at"],
        serde_json::to_value(w.now()).unwrap()
    );
    assert_eq!(before["manual_allowed_at"], Value::Null);
    api.post(&format!("/workspaces/{ws}/sync"))
        .send()
        .await
        .unwrap();

    let s = api.json(&format!("/workspaces/{ws}")).await;
    assert_eq!(s["id"], ws.to_string());
    assert_eq!(s["name"], "Acme");
    assert_eq!(s["plan"], "pro");
    assert_eq!(s["provider"], "jamf");
    assert_eq!(s["last_sync"]["outcome"], "succeeded");
    assert_eq!(s["last_sync"]["trigger"], "manual");
    assert_eq!(s["last_error"], Value::Null);
    assert_eq!(s["held"], Value::Null);
    assert_eq!(s["running"], false);
    let policy = api.scheduler.policy().clone();
    assert_eq!(
        s["next_scheduled_at"],
        serde_json::to_value(w.now() + policy.interval + policy.jitter(ws)).unwrap()
    );
    assert_eq!(
        s["manual_allowed_at"],
        serde_json::to_value(w.now() + policy.cooldown).unwrap()
    );

    let groups = api.json(&format!("/workspaces/{ws}/groups")).await;
    let eng = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Engineering")
        .unwrap();
    assert_eq!(eng["source"], "synced");
    assert_eq!(eng["provider"], "jamf");
    assert_eq!(eng["mdm_group_id"], "1");
    assert_eq!(eng["members"][0]["serial_number"], "S1");
    assert_eq!(groups.as_array().unwrap().len(), 4);

    let group_id = eng["id"].as_str().unwrap();
    let h = api
        .json(&format!("/workspaces/{ws}/history?group={group_id}"))
        .await;
    let types: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["GroupCreated", "MemberAdded"]);
    assert_eq!(h[0]["actor"], "api:admin-api");
    assert!(h[0]["sync_id"].is_string(), "G12: the sync it belongs to");
    let all = api.json(&format!("/workspaces/{ws}/history")).await;
    let after = all[2]["position"].as_u64().unwrap();
    let page = api
        .json(&format!("/workspaces/{ws}/history?after={after}&limit=2"))
        .await;
    assert_eq!(page.as_array().unwrap().len(), 2);
    assert_eq!(page[0]["position"].as_u64().unwrap(), after + 1);
    assert_eq!(
        api.get(&format!("/workspaces/{ws}/history?group=x&device=y"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn g11_a_held_sync_is_confirmed_through_the_api() {
    let w = World::new();
    let ws = connected(&w, None).await;
    let api = Api::start(&w).await;
    let path = format!("/workspaces/{ws}/sync");
    api.post(&path).send().await.unwrap();
    // The MDM suddenly answers with no groups: held, nothing detached.
    w.clients.lock().unwrap()[&(ws, Provider::Jamf)]
        .fake
        .set_snapshot(Snapshot::new(Provider::Jamf));
    let r = api
        .post(&format!("{path}?force=true"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["outcome"], "held");
    let held_id = body["sync_id"].as_str().unwrap().to_owned();
    let s = api.json(&format!("/workspaces/{ws}")).await;
    assert_eq!(s["held"]["sync_id"], held_id);
    assert!(s["held"]["reason"].as_str().unwrap().contains("no groups"));
    assert_eq!(
        api.json(&format!("/workspaces/{ws}/groups")).await[0]["source"],
        "synced"
    );
    // Bad confirmations are refused up front.
    for q in ["confirm=nope", &format!("confirm={held_id}&force=true")] {
        let r = api.post(&format!("{path}?{q}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
    }
    // The operator confirms (within the cooldown: a confirmation is not a manual sync).
    let r = api
        .post(&format!("{path}?confirm={held_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["outcome"], "succeeded", "{body}");
    assert_eq!(body["report"]["detached"], 4);
    let s = api.json(&format!("/workspaces/{ws}")).await;
    assert_eq!(s["held"], Value::Null);
    assert_eq!(s["last_sync"]["trigger"], "confirmation");
}
