//! P2: every pagination style returns all items or fails; loops, repeats, runaway page counts
//! and counts that do not add up are errors, never endless loops or silent truncation.

use crate::common::{client, serve};
use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use mdmsync_core::{ErrorKind, MdmError, Provider};
use mdmsync_http::{
    Auth, CursorPage, HasMorePage, LinkPage, PageEnd, Pager, TotalPage, Url, endpoint,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

fn pager() -> Pager {
    Pager::new(Provider::JumpCloud, "list system groups", 50)
}

fn ids(n: u64) -> Vec<u64> {
    (1..=n).collect()
}

/// `page` of `size` items from `all`.
fn slice(all: &[u64], page: u64, size: u64) -> Vec<u64> {
    all.iter()
        .skip((page * size) as usize)
        .take(size as usize)
        .copied()
        .collect()
}

fn assert_p2(err: MdmError, needle: &str) {
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("JumpCloud: list system groups failed"),
        "{msg}"
    );
    assert!(msg.contains("(P2)"), "{msg}");
    assert!(msg.contains(needle), "expected {needle:?} in {msg}");
}

// ---- page + size with totalCount (Jamf) ----

#[tokio::test]
async fn p2_numbered_with_total_collects_every_page() {
    let all = ids(7);
    let got = pager()
        .numbered_with_total(
            3,
            |p| {
                let items = slice(&all, p.into(), 3);
                async move { Ok(TotalPage { total: 7, items }) }
            },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, all);
    let empty = pager()
        .numbered_with_total(
            3,
            |_| async {
                Ok(TotalPage::<u64> {
                    total: 0,
                    items: vec![],
                })
            },
            |id| *id,
        )
        .await
        .unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn p2_numbered_with_total_refuses_repeats_truncation_and_ignored_page_size() {
    // The server ignores `page` and returns page 0 again: repeated ids.
    let err = pager()
        .numbered_with_total(
            3,
            |_| async {
                Ok(TotalPage {
                    total: 9,
                    items: vec![1u64, 2, 3],
                })
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "repeats id 1");
    // The pages end (empty) before totalCount.
    let all = ids(5);
    let err = pager()
        .numbered_with_total(
            3,
            |p| {
                let items = slice(&all, p.into(), 3);
                async move { Ok(TotalPage { total: 8, items }) }
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "totalCount says 8");
    // The server uses a smaller page size than asked (items would be skipped).
    let all = ids(10);
    let err = pager()
        .numbered_with_total(
            4,
            |p| {
                let items = slice(&all, p.into(), 2);
                async move { Ok(TotalPage { total: 10, items }) }
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "holds 2 of 4 items");
    // A bigger page than asked.
    let err = pager()
        .numbered_with_total(
            2,
            |_| async {
                Ok(TotalPage {
                    total: 10,
                    items: ids(5),
                })
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "ignores the page size");
    // totalCount changes mid-listing.
    let all = ids(6);
    let err = pager()
        .numbered_with_total(
            2,
            |p| {
                let items = slice(&all, p.into(), 2);
                async move {
                    Ok(TotalPage {
                        total: 6 + u64::from(p),
                        items,
                    })
                }
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "totalCount changed");
}

// ---- offset + limit over a bare array (Iru devices, JumpCloud) ----

#[tokio::test]
async fn p2_offset_short_page_ends_the_listing() {
    let all = ids(7);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c = calls.clone();
    let got = pager()
        .offset(
            3,
            PageEnd::ShortPage,
            |offset| {
                c.lock().unwrap().push(offset);
                let items = slice(&all, offset / 3, 3);
                async move { Ok(items) }
            },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, all);
    assert_eq!(*calls.lock().unwrap(), vec![0, 3, 6]);
}

/// JumpCloud: null associations make pages short before the end (lessons: 200-member cut-off).
/// Positions 0..10, of which 3, 4 and 8 are nulls the server drops from its pages.
fn jumpcloud_page(offset: u64, limit: u64) -> Vec<u64> {
    (offset..(offset + limit).min(10))
        .filter(|i| ![3, 4, 8].contains(i))
        .collect()
}

#[tokio::test]
async fn p2_jumpcloud_short_pages_before_the_end_do_not_truncate() {
    let want: Vec<u64> = jumpcloud_page(0, 10);
    // Naive short-page stop would truncate after the first page.
    let naive = pager()
        .offset(
            4,
            PageEnd::ShortPage,
            |o| async move { Ok(jumpcloud_page(o, 4)) },
            |id| *id,
        )
        .await
        .unwrap();
    assert!(
        naive.len() < want.len(),
        "this is the bug PageEnd::ShortPage has here"
    );
    // Continue until an empty page.
    let got = pager()
        .offset(
            4,
            PageEnd::EmptyPage,
            |o| async move { Ok(jumpcloud_page(o, 4)) },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, want);
    // Count first, then page.
    let got = pager()
        .offset(
            4,
            PageEnd::Total(10),
            |o| async move { Ok(jumpcloud_page(o, 4)) },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, want);
    // A count larger than what the pages hold is an error, not a silent stop.
    let err = pager()
        .offset(
            4,
            PageEnd::Total(20),
            |o| async move { Ok(jumpcloud_page(o, 4)) },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "is empty at offset 12 but the count says 20");
}

#[tokio::test]
async fn p2_offset_refuses_repeated_pages_and_endless_listings() {
    // The server ignores `offset`.
    let err = pager()
        .offset(
            3,
            PageEnd::ShortPage,
            |_| async { Ok(vec![1u64, 2, 3]) },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "page 2 repeats id 1");
    // Never empty, never repeating: bounded by max_pages.
    let err = pager()
        .max_pages(5)
        .offset(
            2,
            PageEnd::EmptyPage,
            |o| async move { Ok(vec![o, o + 1]) },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "more than 5 pages");
}

// ---- page + per_page, no total (Fleet) ----

#[tokio::test]
async fn p2_numbered_stops_on_a_short_page_and_refuses_repeats() {
    let all = ids(10);
    let got = pager()
        .numbered(
            4,
            PageEnd::ShortPage,
            |p| {
                let items = slice(&all, p.into(), 4);
                async move { Ok(items) }
            },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, all);
    // Exactly full last page: one more (empty) request ends it.
    let all = ids(8);
    let got = pager()
        .numbered(
            4,
            PageEnd::ShortPage,
            |p| {
                let items = slice(&all, p.into(), 4);
                async move { Ok(items) }
            },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, all);
    // Duplicates across pages.
    let err = pager()
        .numbered(
            2,
            PageEnd::ShortPage,
            |p| async move { Ok(vec![u64::from(p), u64::from(p) + 1]) },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "page 2 repeats id 1");
}

// ---- starting_after + has_more (SimpleMDM) ----

#[tokio::test]
async fn p2_starting_after_follows_the_last_id() {
    let all = vec![10u64, 20, 30, 40, 50];
    let afters = Arc::new(Mutex::new(Vec::new()));
    let a = afters.clone();
    let got = pager()
        .starting_after(
            |after: Option<u64>| {
                a.lock().unwrap().push(after);
                let rest: Vec<u64> = all
                    .iter()
                    .copied()
                    .filter(|id| after.is_none_or(|x| *id > x))
                    .collect();
                let has_more = rest.len() > 2;
                let items = rest.into_iter().take(2).collect();
                async move { Ok(HasMorePage { items, has_more }) }
            },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, all);
    assert_eq!(*afters.lock().unwrap(), vec![None, Some(20), Some(40)]);
}

#[tokio::test]
async fn p2_starting_after_refuses_loops_and_empty_pages_with_more() {
    // The cursor is ignored: the first page comes back forever.
    let err = pager()
        .starting_after(
            |_| async {
                Ok(HasMorePage {
                    items: vec![1u64, 2],
                    has_more: true,
                })
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "repeats id 1");
    let err = pager()
        .starting_after(
            |_| async {
                Ok(HasMorePage::<u64> {
                    items: vec![],
                    has_more: true,
                })
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "empty but says has_more");
}

// ---- opaque cursor ----

#[tokio::test]
async fn p2_cursor_refuses_a_repeated_cursor() {
    let got = pager()
        .cursor(
            |c: Option<u64>| async move {
                let at = c.unwrap_or(0);
                Ok(CursorPage {
                    items: vec![at],
                    next: (at < 3).then_some(at + 1),
                })
            },
            |id| *id,
        )
        .await
        .unwrap();
    assert_eq!(got, vec![0, 1, 2, 3]);
    // Fresh ids every page but the cursor cycles a -> b -> a.
    let n = Arc::new(Mutex::new(0u64));
    let err = pager()
        .cursor(
            |c: Option<&'static str>| {
                let mut n = n.lock().unwrap();
                *n += 1;
                let id = *n;
                async move {
                    Ok(CursorPage {
                        items: vec![id],
                        next: Some(if c == Some("a") { "b" } else { "a" }),
                    })
                }
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "cursor already used");
}

// ---- next URL (Iru tags DRF, Graph @odata.nextLink), end to end over HTTP ----

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

/// A Graph-like server: `/groups` pages of 2 with opaque `$skiptoken`s; `mode` selects a fault.
async fn graph(mode: &'static str) -> Url {
    let groups: Vec<String> = (1..=5).map(|i| format!("g{i}")).collect();
    serve(Router::new().route(
        "/v1.0/groups",
        get(move |Query(q): Query<HashMap<String, String>>| {
            let groups = groups.clone();
            async move {
                let skip: usize = q
                    .get("$skiptoken")
                    .map(|t| t.trim_start_matches("tok").parse().unwrap())
                    .unwrap_or(0);
                let items: Vec<_> = groups.iter().skip(skip).take(2).cloned().collect();
                let next_skip = skip + 2;
                let next = match mode {
                    "loop" if skip == 2 => Some("/v1.0/groups?$skiptoken=tok0".to_owned()),
                    "elsewhere" => Some("https://evil.example/v1.0/groups?$skiptoken=tok2".into()),
                    _ if next_skip < 5 => Some(format!("/v1.0/groups?$skiptoken=tok{next_skip}")),
                    _ => None,
                };
                let value: Vec<_> = items
                    .iter()
                    .map(|id| serde_json::json!({"id": id}))
                    .collect();
                let mut body = serde_json::json!({"value": value});
                if let Some(n) = next {
                    // Relative here; the helper resolves it against the current page.
                    body["@odata.nextLink"] = serde_json::Value::String(n);
                }
                axum::Json(body)
            }
        }),
    ))
    .await
}

async fn list_graph(base: &Url) -> Result<Vec<String>, MdmError> {
    let http = client();
    let auth = Auth::None;
    let mut first = endpoint(base, "v1.0/groups");
    first.query_pairs_mut().append_pair("$top", "2");
    let groups = http
        .pager("list groups")
        .next_link(
            first,
            |url| {
                let (http, auth) = (&http, &auth);
                async move {
                    let p: GraphPage = http.get_json("list groups", url, auth).await?;
                    Ok(LinkPage {
                        items: p.value,
                        next: p.next,
                    })
                }
            },
            |g: &GraphGroup| g.id.clone(),
        )
        .await?;
    Ok(groups.into_iter().map(|g| g.id).collect())
}

#[tokio::test]
async fn p2_next_link_is_followed_verbatim_to_the_end() {
    let base = graph("ok").await;
    assert_eq!(
        list_graph(&base).await.unwrap(),
        ["g1", "g2", "g3", "g4", "g5"]
    );
}

#[tokio::test]
async fn p2_next_link_loop_is_an_error() {
    let base = graph("loop").await;
    let err = list_graph(&base).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(
        err.to_string().contains("Jamf: list groups failed"),
        "{err}"
    );
    assert!(err.to_string().contains("repeats id g1"), "{err}");
}

#[tokio::test]
async fn p2_next_link_to_another_origin_is_not_followed() {
    let base = graph("elsewhere").await;
    let err = list_graph(&base).await.unwrap_err();
    assert_eq!(err.kind(), Some(ErrorKind::ServerError), "{err}");
    assert!(err.to_string().contains("another origin"), "{err}");
    assert!(!err.to_string().contains("tok2"), "query redacted: {err}");
}

#[tokio::test]
async fn p2_next_link_back_to_an_earlier_url_is_an_error_even_with_new_ids() {
    let n = Arc::new(Mutex::new(0u32));
    let first = Url::parse("https://graph.example/v1.0/groups").unwrap();
    let err = pager()
        .next_link(
            first,
            |url| {
                let mut n = n.lock().unwrap();
                *n += 1;
                let id = *n;
                let next = if url.query().is_none() {
                    "https://graph.example/v1.0/groups?$skiptoken=a"
                } else {
                    "https://graph.example/v1.0/groups"
                };
                async move {
                    Ok(LinkPage {
                        items: vec![id],
                        next: Some(next.to_owned()),
                    })
                }
            },
            |id| *id,
        )
        .await
        .unwrap_err();
    assert_p2(err, "links back to an earlier page");
}
