//! Request and response helpers shared by the provider modules.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use std::ops::Range;

/// Changes a fault makes to how a listing is paged.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tweaks {
    pub reset_to_first: bool,
    pub shift_back: bool,
    pub drop_first: bool,
    pub empty_groups: bool,
}

/// One page of a listing: the positions served, and where the next page starts.
#[derive(Clone, Debug)]
pub(crate) struct Page {
    pub range: Range<usize>,
    pub next: Option<usize>,
}

impl Tweaks {
    /// The page of `size` items starting at `start` of a listing of `total`.
    pub fn page(&self, total: usize, start: usize, size: usize) -> Page {
        let s = if self.reset_to_first {
            0
        } else {
            start.min(total)
        };
        let end = s.saturating_add(size).min(total);
        let mut from = if self.shift_back && s > 0 { s - 1 } else { s };
        if self.drop_first && from < end {
            from += 1;
        }
        Page {
            range: from..end,
            next: (s.saturating_add(size) < total).then_some(s + size),
        }
    }
}

/// A request, read whole.
pub(crate) struct Req {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `scheme://host:port` as the client addressed us.
    pub origin: String,
    pub tweaks: Tweaks,
}

impl Req {
    pub fn q(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn q_all(&self, key: &str) -> Vec<&str> {
        self.query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn bearer(&self) -> Option<&str> {
        let h = self.header("authorization")?;
        let (scheme, token) = h.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    pub fn json_body(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// This request's URL with `replace` set (others kept in order), absolute.
    pub fn url_with(&self, replace: &[(&str, String)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .query
            .iter()
            .filter(|(k, _)| !replace.iter().any(|(r, _)| r == k))
            .cloned()
            .collect();
        for (k, v) in replace {
            pairs.push(((*k).to_owned(), v.clone()));
        }
        let q: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        if q.is_empty() {
            format!("{}{}", self.origin, self.path)
        } else {
            format!("{}{}?{}", self.origin, self.path, q.join("&"))
        }
    }
}

/// Percent-encodes a query component, keeping `$`, `'`, `(`, `)`, `,`, `:` and `*` readable
/// as Graph does in its links.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'_'
            | b'.'
            | b'~'
            | b'$'
            | b'\''
            | b'('
            | b')'
            | b','
            | b':'
            | b'*' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether a request asks for a page other than the first.
pub(crate) fn is_continuation(query: &[(String, String)]) -> bool {
    query.iter().any(|(k, v)| match k.as_str() {
        "$skiptoken" | "cursor" | "starting_after" | "after" => !v.is_empty(),
        "page" | "offset" | "skip" => v.parse::<u64>().is_ok_and(|n| n > 0),
        _ => false,
    })
}

/// The page size the client asked for, if any.
pub(crate) fn asked_page_size(query: &[(String, String)]) -> Option<u64> {
    const KEYS: [&str; 7] = [
        "page-size",
        "page_size",
        "pagesize",
        "size",
        "$top",
        "limit",
        "per_page",
    ];
    KEYS.iter().find_map(|k| {
        query
            .iter()
            .find(|(q, _)| q == k)
            .and_then(|(_, v)| v.parse().ok())
    })
}

pub(crate) fn json(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    raw(status, "application/json; charset=utf-8", body)
}

pub(crate) fn ok(v: &Value) -> Response {
    json(StatusCode::OK, v)
}

pub(crate) fn raw(status: StatusCode, content_type: &str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

pub(crate) fn with_header(mut r: Response, name: &'static str, value: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

/// Parses a page size: absent → `default`; not a number, below `min` or above `max` → `Err`.
pub(crate) fn size_param(
    v: Option<&str>,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, String> {
    match v {
        None | Some("") => Ok(default),
        Some(s) => match s.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(format!(
                "must be an integer between {min} and {max}, got {s:?}"
            )),
        },
    }
}

/// Parses a non-negative integer parameter (absent → 0).
pub(crate) fn num_param(v: Option<&str>) -> Result<usize, String> {
    match v {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| format!("must be a non-negative integer, got {s:?}")),
    }
}

pub(crate) fn rfc3339(t: Option<chrono::DateTime<chrono::Utc>>) -> Value {
    match t {
        Some(t) => Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p2_page_tweaks_loop_repeat_and_shorten() {
        let t = Tweaks::default();
        let p = t.page(10, 4, 4);
        assert_eq!((p.range, p.next), (4..8, Some(8)));
        assert_eq!(t.page(10, 8, 4).next, None);
        let lp = Tweaks {
            reset_to_first: true,
            ..Tweaks::default()
        };
        assert_eq!(lp.page(10, 4, 4).range, 0..4);
        assert_eq!(lp.page(10, 4, 4).next, Some(4));
        let dup = Tweaks {
            shift_back: true,
            ..Tweaks::default()
        };
        assert_eq!(dup.page(10, 4, 4).range, 3..8);
        let short = Tweaks {
            drop_first: true,
            ..Tweaks::default()
        };
        let p = short.page(10, 4, 4);
        assert_eq!((p.range, p.next), (5..8, Some(8)));
    }
}
