//! Provider credentials as the core sees them: a map of named fields, the secret ones held in
//! `secrecy` types so they never reach `Debug` output, logs or events (C2).

use crate::provider::Provider;
use secrecy::{ExposeSecret, SecretString};
use std::collections::BTreeMap;
use std::fmt;

/// Validated credentials for one provider. `Debug` prints field names, never values of secret
/// fields. Not `Serialize`: storing them is the credential vault's job, encrypted (C2).
#[derive(Clone)]
pub struct Credentials {
    provider: Provider,
    fields: BTreeMap<String, SecretString>,
}

/// Credentials that do not fit the provider's field list (table P).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// A required field is missing or blank.
    #[error(
        "{provider} needs the credential field `{key}` ({label}); pass it as --credential {key}=VALUE"
    )]
    Missing {
        /// The provider's display name.
        provider: &'static str,
        /// The field key.
        key: &'static str,
        /// The field's label.
        label: &'static str,
    },
    /// A field the provider does not know.
    #[error("{provider} has no credential field `{key}`; it takes: {expected}")]
    Unknown {
        /// The provider's display name.
        provider: &'static str,
        /// The unknown key.
        key: String,
        /// The keys it takes, comma-separated.
        expected: String,
    },
}

impl Credentials {
    /// Checks `fields` against the provider's catalogue: every required field present and not
    /// blank, no unknown field. Values are trimmed.
    pub fn new(
        provider: Provider,
        fields: impl IntoIterator<Item = (String, SecretString)>,
    ) -> Result<Self, CredentialsError> {
        let catalogue = provider.credential_fields();
        let mut map = BTreeMap::new();
        for (key, value) in fields {
            let key = key.trim().to_ascii_lowercase();
            if !catalogue.iter().any(|f| f.key == key) {
                return Err(CredentialsError::Unknown {
                    provider: provider.display_name(),
                    key,
                    expected: catalogue
                        .iter()
                        .map(|f| f.key)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let trimmed = value.expose_secret().trim();
            if !trimmed.is_empty() {
                map.insert(key, SecretString::from(trimmed.to_owned()));
            }
        }
        for f in catalogue.iter().filter(|f| f.required) {
            if !map.contains_key(f.key) {
                return Err(CredentialsError::Missing {
                    provider: provider.display_name(),
                    key: f.key,
                    label: f.label,
                });
            }
        }
        Ok(Self {
            provider,
            fields: map,
        })
    }

    /// The provider these credentials are for.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// A field's value, if present. Callers expose it only to put it on the wire.
    pub fn get(&self, key: &str) -> Option<&SecretString> {
        self.fields.get(key)
    }

    /// A required field's value (present by construction).
    pub fn require(&self, key: &str) -> &SecretString {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("credential field `{key}` checked at construction"))
    }

    /// Iterates over `(key, value)` pairs, for the vault to encrypt.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Credentials");
        d.field("provider", &self.provider);
        for (key, value) in &self.fields {
            let secret = self
                .provider
                .credential_fields()
                .iter()
                .any(|c| c.key == key && c.secret);
            if secret {
                d.field(key, &"[REDACTED]");
            } else {
                d.field(key, &value.expose_secret());
            }
        }
        d.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(provider: Provider, pairs: &[(&str, &str)]) -> Result<Credentials, CredentialsError> {
        Credentials::new(
            provider,
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(v.to_string()))),
        )
    }

    #[test]
    fn c2_debug_output_never_shows_a_secret() {
        let c = creds(
            Provider::Jamf,
            &[
                ("host", "x.jamfcloud.com"),
                ("client_id", "id"),
                ("client_secret", "s3cr3t-value"),
            ],
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("x.jamfcloud.com"));
    }

    #[test]
    fn p_missing_and_unknown_fields_are_named() {
        let err = creds(Provider::Intune, &[("tenant_id", "t"), ("client_id", "c")]).unwrap_err();
        assert!(err.to_string().contains("client_secret"), "{err}");
        let err = creds(Provider::SimpleMdm, &[("api_key", "k"), ("host", "h")]).unwrap_err();
        assert!(err.to_string().contains("`host`"), "{err}");
        let err = creds(Provider::Fleet, &[("host", "h"), ("api_token", "  ")]).unwrap_err();
        assert!(matches!(
            err,
            CredentialsError::Missing {
                key: "api_token",
                ..
            }
        ));
        assert!(
            creds(Provider::JumpCloud, &[("api_key", "k")]).is_ok(),
            "org_id is optional"
        );
    }
}
