//! Decoding of the documented SimpleMDM shapes, on fixtures written from
//! `shared/providers.md` §3 (not copied from anywhere), and the legacy device-group members of
//! an assignment group resolved through a small local server serving those fixtures.

use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use chrono::{TimeZone, Utc};
use mdmsync_core::{ErrorKind, MdmClient, Provider, Snapshot};
use mdmsync_http::{HttpConfig, RetryPolicy};
use mdmsync_simplemdm::wire::{Account, AssignmentGroup, Device, ListPage, Single};
use mdmsync_simplemdm::{SimpleMdmClient, SimpleMdmConfig};
use secrecy::SecretString;
use std::collections::HashMap;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn p2_group_pages_carry_has_more_and_embedded_members() {
    let p1: ListPage<AssignmentGroup> =
        serde_json::from_str(&fixture("assignment_groups_page1_limit2.json")).unwrap();
    assert!(p1.has_more);
    assert_eq!(p1.data[0].id, 26);
    assert_eq!(p1.data[0].attributes.name, "Engineering");
    let members: Vec<u64> = p1.data[0]
        .relationships
        .devices
        .data
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(members, [121, 122]);
    let legacy = p1.data[1].relationships.device_groups.as_ref().unwrap();
    assert_eq!(legacy.data[0].id, 38);
    assert_eq!(legacy.data[0].kind.as_deref(), Some("device_group"));
    let p2: ListPage<AssignmentGroup> =
        serde_json::from_str(&fixture("assignment_groups_page2_limit2.json")).unwrap();
    assert!(!p2.has_more);
    assert_eq!(p2.data[0].relationships.device_groups, None);
    assert!(p2.data[0].relationships.devices.data.is_empty());
}

#[test]
fn e1_a_group_without_its_devices_relationship_is_not_the_documented_shape() {
    let err = serde_json::from_str::<ListPage<AssignmentGroup>>(&fixture(
        "assignment_group_without_devices.json",
    ))
    .unwrap_err();
    assert!(err.to_string().contains("devices"), "{err}");
}

#[test]
fn m1_devices_map_to_records_named_after_the_device() {
    let p1: ListPage<Device> = serde_json::from_str(&fixture("devices_page1_limit2.json")).unwrap();
    let r = p1.data[0].record();
    assert_eq!(r.mdm_device_id.as_str(), "121");
    assert_eq!(r.serial_number, "C02SMTEST121");
    assert_eq!(
        r.device_name.as_deref(),
        Some("Noor's MacBook Air"),
        "the SimpleMDM name"
    );
    assert_eq!((r.user_id.clone(), r.user_name.clone()), (None, None));
    assert_eq!(r.display_name().as_deref(), Some("Noor's MacBook Air"));
    assert_eq!(
        r.last_seen,
        Some(Utc.with_ymd_and_hms(2025, 5, 31, 16, 15, 0).unwrap())
    );
    assert_eq!(p1.data[0].device_group(), Some(37));
    // A blank SimpleMDM name falls back to the name the device reports.
    assert_eq!(
        p1.data[1].record().device_name.as_deref(),
        Some("Front Desk iPad")
    );
    let p2: ListPage<Device> = serde_json::from_str(&fixture("devices_page2_limit2.json")).unwrap();
    let r = p2.data[0].record();
    assert_eq!((r.serial_number.as_str(), r.last_seen), ("", None));
}

#[test]
fn m1_detail_and_account_decode_and_odd_values_are_tolerated() {
    let d: Single<Device> = serde_json::from_str(&fixture("device_detail.json")).unwrap();
    let r = d.data.record();
    assert_eq!(r.serial_number, "c07smtest123", "trimmed; case kept");
    assert_eq!(
        r.last_seen, None,
        "an unreadable time does not fail the record"
    );
    assert_eq!(d.data.device_group(), None);
    let a: Single<Account> = serde_json::from_str(&fixture("account.json")).unwrap();
    assert_eq!(a.data.attributes.name.as_deref(), Some("Example Co"));
}

fn json(status: StatusCode, name: &str) -> axum::response::Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        fixture(name),
    )
        .into_response()
}

async fn groups(Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    assert_eq!(q.get("limit").map(String::as_str), Some("100"));
    match q.get("starting_after").map(String::as_str) {
        None => json(StatusCode::OK, "assignment_groups_page1_limit2.json"),
        Some("27") => json(StatusCode::OK, "assignment_groups_page2_limit2.json"),
        Some(_) => json(StatusCode::NOT_FOUND, "error_404.json"),
    }
}

async fn devices(Query(q): Query<HashMap<String, String>>) -> axum::response::Response {
    assert_eq!(q.get("limit").map(String::as_str), Some("100"));
    match q.get("starting_after").map(String::as_str) {
        None => json(StatusCode::OK, "devices_page1_limit2.json"),
        Some("122") => json(StatusCode::OK, "devices_page2_limit2.json"),
        Some(_) => json(StatusCode::NOT_FOUND, "error_404.json"),
    }
}

async fn refresh(Path(id): Path<u64>) -> axum::response::Response {
    match id {
        123 => json(StatusCode::UNPROCESSABLE_ENTITY, "error_422.json"),
        _ => json(StatusCode::NOT_FOUND, "error_404.json"),
    }
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/api/v1/assignment_groups", get(groups))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/devices/{id}/refresh", post(refresh))
        .route(
            "/broken/api/v1/assignment_groups",
            get(|| async { json(StatusCode::OK, "assignment_group_without_devices.json") }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn client(base: &str, legacy: bool) -> SimpleMdmClient {
    let mut config = SimpleMdmConfig::new(SecretString::from("k3y-value"))
        .with_base_url(base)
        .unwrap()
        .with_http(HttpConfig {
            retry: RetryPolicy::NONE,
            use_env_proxy: false,
            ..HttpConfig::default()
        });
    config.include_device_group_members = legacy;
    SimpleMdmClient::new(config).unwrap()
}

#[tokio::test]
async fn g3_legacy_device_group_members_count_as_indirect_members() {
    let origin = serve().await;
    let got = client(&origin, true).fetch_snapshot().await.unwrap();
    let want = Snapshot::new(Provider::SimpleMdm)
        .with_group("26", "Engineering", ["121", "122"])
        // 123 directly; 122 and 124 through legacy device group 38 (121 is in group 37).
        .with_group("27", "Kiosks", ["123", "122", "124"])
        .with_group("31", "Staging (empty)", Vec::<&str>::new());
    let norm = |s: &Snapshot| {
        let mut s = s.clone();
        for g in &mut s.groups {
            g.kind = mdmsync_core::GroupKind::Static;
        }
        s
    };
    let (got_norm, want_norm) = (norm(&got), norm(&want));
    assert_eq!(got_norm.validate().unwrap(), want_norm.validate().unwrap());
    assert!(
        got.groups
            .iter()
            .all(|g| g.kind == mdmsync_core::GroupKind::Unknown)
    );

    let direct_only = client(&origin, false).fetch_snapshot().await.unwrap();
    let kiosks = direct_only
        .groups
        .iter()
        .find(|g| g.id.as_str() == "27")
        .unwrap();
    assert_eq!(kiosks.members, ["123".into()]);
}

#[tokio::test]
async fn e1_documented_error_bodies_and_shapes() {
    let origin = serve().await;
    let c = client(&origin, true);
    let err = c.force_sync(&"123".into()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(
        err.to_string()
            .contains("device does not support this command"),
        "{err}"
    );
    let err = c.force_sync(&"5".into()).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("object not found"), "{err}");
    let err = client(&format!("{origin}/broken/api/v1"), true)
        .fetch_snapshot()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("missing field `devices`"), "{err}");
}
