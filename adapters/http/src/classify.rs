//! E1 classification: HTTP statuses and transport failures to [`ErrorKind`].

use mdmsync_core::ErrorKind;
use reqwest::StatusCode;
use std::error::Error as StdError;
use std::io;

/// The E1 kind of a final (non-success) HTTP status: 401 → `Unauthorized`, 403 → `Forbidden`,
/// 404/405/410 and unfollowed redirects → `NotFound`, anything else (4xx, 5xx, 429 after
/// retries) → `ServerError`.
pub fn status_kind(status: StatusCode) -> ErrorKind {
    match status.as_u16() {
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Forbidden,
        404 | 405 | 410 => ErrorKind::NotFound,
        300..=399 => ErrorKind::NotFound,
        _ => ErrorKind::ServerError,
    }
}

/// What went wrong below HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    /// TLS: the certificate was not trusted, or the handshake failed.
    Tls(String),
    /// No answer in time.
    Timeout,
    /// The host refused the connection.
    Refused,
    /// The host name did not resolve.
    Dns,
    /// The connection was reset or closed mid-exchange.
    Reset,
    /// Something else; the text is the error chain without URLs.
    Other(String),
}

impl Transport {
    pub(crate) fn kind(&self) -> ErrorKind {
        match self {
            Transport::Tls(_) => ErrorKind::SslError,
            _ => ErrorKind::ConnectionFailed,
        }
    }

    /// E2: resets and timeouts are transient; refusals, DNS and TLS failures are not.
    pub(crate) fn retryable(&self) -> bool {
        matches!(self, Transport::Timeout | Transport::Reset)
    }

    pub(crate) fn describe(&self, timeout: std::time::Duration) -> String {
        match self {
            Transport::Tls(d) => format!("TLS certificate validation failed ({d}); no HTTP status"),
            Transport::Timeout => {
                format!("no response within {timeout:?} (timeout); no HTTP status")
            }
            Transport::Refused => "connection refused; no HTTP status".into(),
            Transport::Dns => "the host name could not be resolved (DNS); no HTTP status".into(),
            Transport::Reset => {
                "the connection was reset or closed by the server; no HTTP status".into()
            }
            Transport::Other(d) => format!("connection failed ({d}); no HTTP status"),
        }
    }
}

/// Every error in `err`'s source chain, descending into the payload of `io::Error`s (whose
/// `source()` skips the wrapped error, which is where rustls puts its certificate errors).
fn chain<'a>(err: &'a (dyn StdError + 'static), out: &mut Vec<&'a (dyn StdError + 'static)>) {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if out.len() > 32 {
            return;
        }
        out.push(e);
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                chain(inner, out);
            }
        }
        cur = e.source();
    }
}

/// Classifies a reqwest failure by walking its source chain.
pub(crate) fn classify_transport(err: &reqwest::Error) -> Transport {
    let mut errors = Vec::new();
    chain(err, &mut errors);
    // Skip reqwest's own Display: it prints the URL, query string included.
    let texts: Vec<String> = errors.iter().skip(1).map(|e| e.to_string()).collect();

    for e in &errors {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Transport::Tls(tls.to_string());
        }
    }
    for t in &texts {
        let l = t.to_ascii_lowercase();
        if l.contains("certificate")
            || l.contains("unknownissuer")
            || l.contains("invalid peer")
            || l.contains("tls handshake")
        {
            return Transport::Tls(t.clone());
        }
    }
    if err.is_timeout() {
        return Transport::Timeout;
    }
    let mut reset = false;
    for e in &errors {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return Transport::Refused,
                io::ErrorKind::TimedOut => return Transport::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof => reset = true,
                _ => {}
            }
        }
    }
    for t in &texts {
        let l = t.to_ascii_lowercase();
        if l.contains("dns error")
            || l.contains("failed to lookup address")
            || l.contains("name or service not known")
            || l.contains("no such host")
        {
            return Transport::Dns;
        }
        if l.contains("connection refused") {
            return Transport::Refused;
        }
        if l.contains("connection closed before message completed")
            || l.contains("connection reset")
            || l.contains("incomplete message")
            || l.contains("unexpected eof")
            || l.contains("end of file before message length reached")
        {
            reset = true;
        }
    }
    if reset {
        return Transport::Reset;
    }
    // A failure after the request went out (not while connecting) is treated like a reset:
    // the server dropped the exchange.
    if !err.is_connect() && (err.is_request() || err.is_body() || err.is_decode()) {
        return Transport::Reset;
    }
    let detail = if texts.is_empty() {
        "unknown transport error".to_owned()
    } else {
        texts.join(": ")
    };
    Transport::Other(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e1_statuses_map_to_kinds() {
        let k = |s: u16| status_kind(StatusCode::from_u16(s).unwrap());
        assert_eq!(k(401), ErrorKind::Unauthorized);
        assert_eq!(k(403), ErrorKind::Forbidden);
        assert_eq!(k(404), ErrorKind::NotFound);
        assert_eq!(k(302), ErrorKind::NotFound);
        assert_eq!(k(429), ErrorKind::ServerError);
        assert_eq!(k(500), ErrorKind::ServerError);
        assert_eq!(k(503), ErrorKind::ServerError);
        assert_eq!(k(422), ErrorKind::ServerError);
    }

    #[test]
    fn e2_only_resets_and_timeouts_are_transient() {
        assert!(Transport::Reset.retryable());
        assert!(Transport::Timeout.retryable());
        assert!(!Transport::Refused.retryable());
        assert!(!Transport::Dns.retryable());
        assert!(!Transport::Tls("x".into()).retryable());
        assert_eq!(Transport::Tls("x".into()).kind(), ErrorKind::SslError);
        assert_eq!(Transport::Dns.kind(), ErrorKind::ConnectionFailed);
    }
}
