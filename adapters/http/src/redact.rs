//! Keeping credentials out of messages (P3, C2): URLs lose their query string and user info,
//! known secret values are replaced, and error bodies are reduced to a short summary.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// What replaces a secret value or a query string in messages.
pub const REDACTED: &str = "[redacted]";

/// `url` as it may appear in a message: scheme, host, port and path only. A query string is
/// shown as `?[redacted]`, user info and fragment are dropped.
///
/// ```
/// let url = url::Url::parse("https://u:p@mdm.example/api/x?api_key=s3cret#f").unwrap();
/// assert_eq!(mdmsync_http::redact_url(&url), "https://mdm.example/api/x?[redacted]");
/// ```
pub fn redact_url(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path());
    if url.query().is_some() {
        out.push('?');
        out.push_str(REDACTED);
    }
    out
}

/// A set of secret values that must not appear in a message; [`Scrubber::scrub`] replaces
/// each occurrence with `[redacted]`. Cheap to build per request.
#[derive(Default, Clone)]
pub struct Scrubber {
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrubber")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Scrubber {
    /// Adds a value to hide. Values shorter than 4 characters are ignored (they would mangle
    /// ordinary words and are not credentials).
    pub fn add(&mut self, secret: &SecretString) {
        if secret.expose_secret().len() >= 4 {
            self.secrets.push(secret.clone());
        }
    }

    /// `text` with every known secret replaced by `[redacted]`.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            let s = s.expose_secret();
            if out.contains(s) {
                out = out.replace(s, REDACTED);
            }
        }
        out
    }
}

/// Longest server-provided text quoted in an error message.
const MAX_SUMMARY: usize = 200;

/// A short, human summary of an error body: the message fields of the JSON error shapes the
/// six providers use (`error_description`, `error`, `message`, `detail`, `title`,
/// `errors[0].description|reason|title|message`, Graph's `error.code`/`error.message`), or a
/// short plain-text body. HTML and long bodies give `None`. Callers still scrub the result.
pub fn summarize_body(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let summary = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => summarize_json(&v)?,
        Err(_) => {
            if text.starts_with('<') || text.len() > MAX_SUMMARY {
                return None;
            }
            text.to_owned()
        }
    };
    let one_line: String = summary
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Some(truncate(&one_line, MAX_SUMMARY))
}

fn summarize_json(v: &serde_json::Value) -> Option<String> {
    use serde_json::Value;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => items.first().and_then(summarize_json),
        Value::Object(map) => {
            // OAuth (RFC 6749): error + error_description.
            if let Some(code) = s(map.get("error")) {
                return Some(match s(map.get("error_description")) {
                    Some(d) => format!("{code}: {d}"),
                    None => code,
                });
            }
            // Graph: {"error": {"code", "message"}}.
            if let Some(Value::Object(e)) = map.get("error") {
                let code = s(e.get("code"));
                let msg = s(e.get("message"));
                return match (code, msg) {
                    (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                    (c, m) => c.or(m),
                };
            }
            for key in ["message", "detail", "title", "description", "reason"] {
                if let Some(m) = s(map.get(key)) {
                    return Some(m);
                }
            }
            // Jamf ApiError, SimpleMDM, Fleet: errors[0].
            if let Some(Value::Array(errs)) = map.get("errors") {
                return errs.first().and_then(summarize_json);
            }
            // Iru field errors: {"field": ["msg"]}.
            map.iter().find_map(|(k, v)| match v {
                Value::Array(a) => a
                    .first()
                    .and_then(Value::as_str)
                    .map(|m| format!("{k}: {m}")),
                _ => None,
            })
        }
        _ => None,
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// A serde_json decode error as it may appear in a message: serde quotes offending values
/// from the body (`invalid type: string "…", expected u64`), which could be a token, so values
/// are dropped and only the expectation and position are kept.
pub fn describe_decode_error(err: &serde_json::Error) -> String {
    let msg = err.to_string();
    // serde_json appends " at line L column C"; keep it separately.
    let (head, position) = match msg.rfind(" at line ") {
        Some(i) => (&msg[..i], &msg[i..]),
        None => (msg.as_str(), ""),
    };
    let cleaned = if head.starts_with("missing field") || head.starts_with("duplicate field") {
        head.to_owned()
    } else if let Some(i) = head.find(", expected ") {
        let what = &head[..i];
        let what = what
            .split([':', '`', '"'])
            .next()
            .unwrap_or(what)
            .trim()
            .to_owned();
        format!("{what}{}", &head[i..])
    } else {
        head.split(['`', '"'])
            .next()
            .unwrap_or(head)
            .trim()
            .to_owned()
    };
    format!("{cleaned}{position}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2_scrubber_hides_known_secrets() {
        let mut s = Scrubber::default();
        s.add(&SecretString::from("tok-123456"));
        s.add(&SecretString::from("ab"));
        assert_eq!(
            s.scrub("bearer tok-123456 rejected, ab"),
            "bearer [redacted] rejected, ab"
        );
        assert_eq!(format!("{s:?}"), "Scrubber { secrets: 1 }");
    }

    #[test]
    fn error_bodies_are_summarised_per_provider_shape() {
        let cases: [(&str, Option<&str>); 9] = [
            (
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret"}"#,
                Some("invalid_client: AADSTS7000215: Invalid client secret"),
            ),
            (
                r#"{"error":{"code":"Authorization_RequestDenied","message":"Insufficient privileges"}}"#,
                Some("Authorization_RequestDenied: Insufficient privileges"),
            ),
            (
                r#"{"httpStatus":401,"errors":[{"code":"INVALID_TOKEN","description":"Unauthorized","id":"0","field":null}]}"#,
                Some("Unauthorized"),
            ),
            (
                r#"{"errors":[{"title":"object not found"}]}"#,
                Some("object not found"),
            ),
            (
                r#"{"detail":"Unable to locate the resource"}"#,
                Some("Unable to locate the resource"),
            ),
            (
                r#""This device is already locked.""#,
                Some("This device is already locked."),
            ),
            (
                r#"{"dep_account":["Enter a valid UUID."]}"#,
                Some("dep_account: Enter a valid UUID."),
            ),
            ("<html><body>Not found</body></html>", None),
            ("", None),
        ];
        for (body, want) in cases {
            assert_eq!(summarize_body(body.as_bytes()).as_deref(), want, "{body}");
        }
        let long = "x".repeat(5000);
        assert_eq!(
            summarize_body(format!("{{\"message\":\"{long}\"}}").as_bytes())
                .unwrap()
                .chars()
                .count(),
            MAX_SUMMARY + 1
        );
    }

    #[test]
    fn c2_decode_errors_drop_values_from_the_body() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct T {
            n: u64,
        }
        let err = serde_json::from_str::<T>(r#"{"n":"eyJsecret-token"}"#).unwrap_err();
        let d = describe_decode_error(&err);
        assert!(!d.contains("eyJ"), "{d}");
        assert!(d.contains("expected u64"), "{d}");
        assert!(d.contains("line 1"), "{d}");
        let err = serde_json::from_str::<T>(r#"{"m":1}"#).unwrap_err();
        assert!(describe_decode_error(&err).starts_with("missing field `n`"));
        let err = serde_json::from_str::<T>(r#"{"n":1"#).unwrap_err();
        assert!(describe_decode_error(&err).contains("EOF"));
    }
}
