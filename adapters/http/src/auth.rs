//! How a request authenticates: the header schemes of the six providers, with the secret kept
//! in `secrecy` types. `Debug` of any [`Auth`] shows the scheme, never the value (C2).

use crate::oauth::{ClientCredentials, TokenCache};
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use std::fmt;
use std::sync::Arc;

/// The credential a request carries. Cheap to clone (the OAuth cache is shared).
///
/// | provider | constructor |
/// |---|---|
/// | Jamf, Intune | [`Auth::client_credentials`] (OAuth2, token cached, P4) |
/// | Iru, Fleet | [`Auth::bearer`] |
/// | SimpleMDM | [`Auth::basic_key`] (key as user, empty password) |
/// | JumpCloud | [`Auth::x_api_key`] (+ `x-org-id` as a plain header) |
#[derive(Clone, Default)]
pub enum Auth {
    /// No credential (token endpoints, public probes).
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(SecretString),
    /// `Authorization: Basic base64(<key>:)`: the key as user name, empty password.
    BasicKey(SecretString),
    /// `<header>: <key>`, e.g. JumpCloud's `x-api-key`.
    ApiKey {
        /// The header name, lower case.
        header: HeaderName,
        /// The key.
        key: SecretString,
    },
    /// OAuth2 client credentials: a cached bearer token, fetched and refreshed as needed; a
    /// 401 drops it and the request is retried once with a fresh one (P4).
    OAuth(Arc<TokenCache>),
}

impl Auth {
    /// A static bearer token (Iru, Fleet).
    pub fn bearer(token: SecretString) -> Self {
        Auth::Bearer(token)
    }

    /// HTTP Basic with the key as user and an empty password (SimpleMDM).
    pub fn basic_key(key: SecretString) -> Self {
        Auth::BasicKey(key)
    }

    /// JumpCloud's `x-api-key` header.
    pub fn x_api_key(key: SecretString) -> Self {
        Auth::ApiKey {
            header: HeaderName::from_static("x-api-key"),
            key,
        }
    }

    /// Any API-key header. `header` must be a valid lower-case header name.
    pub fn api_key(header: &'static str, key: SecretString) -> Self {
        Auth::ApiKey {
            header: HeaderName::from_static(header),
            key,
        }
    }

    /// OAuth2 client credentials (Jamf, Intune) with a fresh token cache. Keep the returned
    /// value (clone it freely) for the adapter's lifetime so the token is reused across syncs.
    pub fn client_credentials(credentials: ClientCredentials) -> Self {
        Auth::OAuth(Arc::new(TokenCache::new(credentials)))
    }

    /// The token cache, for OAuth.
    pub fn token_cache(&self) -> Option<&Arc<TokenCache>> {
        match self {
            Auth::OAuth(c) => Some(c),
            _ => None,
        }
    }

    /// Header for a static credential; `None` for no auth and for OAuth (resolved per request).
    /// Fails, without quoting the value, if the secret holds characters a header cannot carry.
    pub(crate) fn static_header(&self) -> Result<Option<(HeaderName, HeaderValue)>, &'static str> {
        let (name, value) = match self {
            Auth::None | Auth::OAuth(_) => return Ok(None),
            Auth::Bearer(t) => (AUTHORIZATION, bearer_value(t)?),
            Auth::BasicKey(k) => {
                let raw = format!("{}:", k.expose_secret());
                let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                (AUTHORIZATION, sensitive(&format!("Basic {encoded}"))?)
            }
            Auth::ApiKey { header, key } => (header.clone(), sensitive(key.expose_secret())?),
        };
        Ok(Some((name, value)))
    }

    /// The static secret, for scrubbing messages.
    pub(crate) fn static_secret(&self) -> Option<&SecretString> {
        match self {
            Auth::Bearer(s) | Auth::BasicKey(s) | Auth::ApiKey { key: s, .. } => Some(s),
            Auth::None | Auth::OAuth(_) => None,
        }
    }
}

pub(crate) fn bearer_value(token: &SecretString) -> Result<HeaderValue, &'static str> {
    sensitive(&format!("Bearer {}", token.expose_secret()))
}

fn sensitive(value: &str) -> Result<HeaderValue, &'static str> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| "the credential contains characters an HTTP header cannot carry")?;
    v.set_sensitive(true);
    Ok(v)
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Bearer(_) => f.write_str("Auth::Bearer([redacted])"),
            Auth::BasicKey(_) => f.write_str("Auth::BasicKey([redacted])"),
            Auth::ApiKey { header, .. } => write!(f, "Auth::ApiKey({header}: [redacted])"),
            Auth::OAuth(c) => write!(f, "Auth::OAuth({c:?})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c2_debug_never_shows_the_secret() {
        let s = || SecretString::from("sup3r-secret");
        for a in [
            Auth::bearer(s()),
            Auth::basic_key(s()),
            Auth::x_api_key(s()),
            Auth::client_credentials(ClientCredentials::new(
                url::Url::parse("https://login.example/token").unwrap(),
                "client-1",
                s(),
            )),
        ] {
            let d = format!("{a:?}");
            assert!(!d.contains("sup3r"), "{d}");
            if let Ok(Some((_, v))) = a.static_header() {
                assert!(v.is_sensitive());
                assert!(!format!("{v:?}").contains("sup3r"));
            }
        }
    }

    #[test]
    fn basic_key_uses_the_key_as_user_and_an_empty_password() {
        let (name, value) = Auth::basic_key(SecretString::from("abc"))
            .static_header()
            .unwrap()
            .unwrap();
        assert_eq!(name, AUTHORIZATION);
        // base64("abc:") = "YWJjOg=="
        assert_eq!(value.to_str().unwrap(), "Basic YWJjOg==");
        let (name, _) = Auth::x_api_key(SecretString::from("k"))
            .static_header()
            .unwrap()
            .unwrap();
        assert_eq!(name.as_str(), "x-api-key");
        assert!(
            Auth::bearer(SecretString::from("bad\nvalue"))
                .static_header()
                .is_err()
        );
    }
}
