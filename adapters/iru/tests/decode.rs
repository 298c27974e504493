//! Decoding of the documented Iru shapes, on fixtures written from `shared/providers.md` §2
//! (not copied from anywhere), and error bodies in every documented shape read without
//! requiring JSON.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{TimeZone, Utc};
use mdmsync_core::{ErrorKind, MdmClient, MdmUserId};
use mdmsync_http::{HttpConfig, RetryPolicy};
use mdmsync_iru::wire::{Device, TagPage};
use mdmsync_iru::{IruClient, IruConfig};
use secrecy::SecretString;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[test]
fn p2_tag_pages_carry_the_drf_next_link_until_null() {
    let p1: TagPage = serde_json::from_str(&fixture("tags_page1.json")).unwrap();
    assert_eq!(p1.count, Some(3));
    assert_eq!(p1.results.len(), 2);
    assert_eq!(p1.results[1].name, "Engineering");
    assert!(p1.next.as_deref().unwrap().contains("cursor="));
    let p2: TagPage = serde_json::from_str(&fixture("tags_page2.json")).unwrap();
    assert_eq!(p2.next, None);
    assert_eq!(p2.results[0].id, "c3e8f1a0-2b7d-4e69-8c15-7a9b0d4f3e03");
}

#[test]
fn m1_device_list_items_map_to_records_with_user_or_device_name() {
    let page: Vec<Device> =
        serde_json::from_str(&fixture("devices_tag_pilot_offset0_limit2.json")).unwrap();
    let r = page[0].record();
    assert_eq!(
        r.mdm_device_id.as_str(),
        "9b2e4f10-7c3a-4d5e-8f61-1a2b3c4d5e01"
    );
    assert_eq!(r.serial_number, "C02FXTEST001");
    assert_eq!(r.device_name.as_deref(), Some("Mira's MacBook Pro"));
    assert_eq!(
        r.user_id,
        Some(MdmUserId::new("4d3c2b1a-0000-4e00-9000-00000000aa01"))
    );
    assert_eq!(r.display_name().as_deref(), Some("Mira Okafor"));
    assert_eq!(
        r.last_seen,
        Some(
            Utc.with_ymd_and_hms(2025, 5, 30, 14, 21, 9).unwrap()
                + chrono::Duration::milliseconds(523)
        )
    );
    // Device tags are names, not ids.
    assert_eq!(
        page[0].tags.as_deref(),
        Some(&["Pilot".to_owned(), "Engineering".to_owned()][..])
    );
}

#[test]
fn m1_an_empty_string_user_is_no_user() {
    let page: Vec<Device> =
        serde_json::from_str(&fixture("devices_tag_pilot_offset2_limit2.json")).unwrap();
    assert_eq!(page[0].user, None);
    let r = page[0].record();
    assert_eq!((r.user_id.clone(), r.user_name.clone()), (None, None));
    assert_eq!(r.display_name().as_deref(), Some("Lobby iPhone"));
}

#[test]
fn m1_null_user_null_tags_padded_serial_and_offsetless_time_are_tolerated() {
    let d: Device = serde_json::from_str(&fixture("device_detail.json")).unwrap();
    assert_eq!(d.user, None);
    assert_eq!(d.tags, Some(vec![]), "null tags: none");
    let r = d.record();
    assert_eq!(r.serial_number, "H7QTEST00004");
    assert_eq!(
        r.last_seen,
        Some(
            Utc.with_ymd_and_hms(2025, 5, 27, 10, 11, 12).unwrap()
                + chrono::Duration::microseconds(123_456)
        )
    );
}

#[test]
fn p2_a_missing_tags_field_is_told_apart_from_no_tags() {
    let d: Device = serde_json::from_str(&fixture("device_without_tags_field.json")).unwrap();
    assert_eq!(d.tags, None, "absent: the sweep cannot be used");
    let r = d.record();
    assert_eq!(
        r.user_id,
        Some(MdmUserId::new("4711")),
        "numeric id kept as text"
    );
    assert_eq!(r.user_name, None, "blank name");
    assert_eq!(
        r.last_seen, None,
        "an unreadable time does not fail the record"
    );
}

#[test]
fn e1_a_user_that_is_neither_object_nor_empty_is_not_the_documented_shape() {
    let err =
        serde_json::from_str::<Device>(&fixture("device_user_unexpected_text.json")).unwrap_err();
    assert!(err.to_string().contains("user"), "{err}");
}

async fn blankpush(Path(id): Path<String>) -> axum::response::Response {
    let json = |name: &str| {
        (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "application/json")],
            fixture(name),
        )
            .into_response()
    };
    match id.as_str() {
        "detail" => json("error_400_detail.json"),
        "bare" => json("error_400_bare_string.json"),
        "array" => json("error_400_array.json"),
        "field" => json("error_400_field.json"),
        "ok" => StatusCode::OK.into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html")],
            fixture("error_404.html"),
        )
            .into_response(),
    }
}

#[tokio::test]
async fn e1_error_bodies_of_every_documented_shape_are_read_without_requiring_json() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/api/v1/devices/{id}/action/blankpush", post(blankpush));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = IruConfig::new(&format!("http://{addr}"), SecretString::from("t0ken-value"))
        .unwrap()
        .with_http(HttpConfig {
            retry: RetryPolicy::NONE,
            use_env_proxy: false,
            ..HttpConfig::default()
        });
    let client = IruClient::new(config).unwrap();
    client.force_sync(&"ok".into()).await.unwrap();
    for (id, kind, said) in [
        ("detail", ErrorKind::ServerError, "Command already running"),
        (
            "bare",
            ErrorKind::ServerError,
            "This device is already locked.",
        ),
        (
            "array",
            ErrorKind::ServerError,
            "Command is not allowed for current device",
        ),
        (
            "field",
            ErrorKind::ServerError,
            "dep_account: Enter a valid UUID.",
        ),
        ("html", ErrorKind::NotFound, "HTTP 404"),
    ] {
        let err = client.force_sync(&id.into()).await.unwrap_err();
        assert_eq!(err.kind(), Some(kind), "{id}: {err}");
        let msg = err.to_string();
        assert!(msg.contains(said), "{id}: {msg}");
        assert!(!msg.contains("<html"), "{msg}");
    }
}
