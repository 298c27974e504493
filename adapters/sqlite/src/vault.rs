//! The credential vault (C2): credentials encrypted at rest with XChaCha20-Poly1305, a fresh
//! random nonce per record and the workspace id as associated data (a record copied to
//! another workspace does not decrypt). The 32-byte key comes from a key file or the
//! `MDMSYNC_KEY` environment variable and is never written to the database.

use crate::codec::format_time;
use crate::error::{Error, Result};
use crate::store::SqliteEventStore;
use async_trait::async_trait;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use mdmsync_core::{CredentialVault, Credentials, Provider, VaultError, WorkspaceId};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

/// The environment variable a key may come from (64 hex digits).
pub const KEY_ENV: &str = "MDMSYNC_KEY";

/// A 32-byte vault key. `Debug` never shows it; it is zeroed when dropped.
pub struct VaultKey(SecretBox<[u8; 32]>);

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultKey([REDACTED])")
    }
}

impl VaultKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&key);
        Self::from_bytes(bytes)
    }

    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// A key from 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| {
            Error::Key("a vault key must be 64 hex digits (32 bytes); generate one with `openssl rand -hex 32` or let mdmsync create a key file".into())
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key in `MDMSYNC_KEY`, if the variable is set.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(KEY_ENV) {
            Ok(v) => Self::from_hex(&v)
                .map(Some)
                .map_err(|e| Error::Key(format!("{KEY_ENV}: {e}"))),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::Key(format!(
                "{KEY_ENV} is not valid text; it must be 64 hex digits"
            ))),
        }
    }

    /// The key as 64 hex digits (for writing a key file).
    pub fn to_hex(&self) -> SecretString {
        SecretString::from(hex::encode(self.0.expose_secret()))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.0.expose_secret()))
    }
}

/// A key file: 64 hex digits (or 32 raw bytes), readable by its owner only.
#[derive(Debug)]
pub struct KeyFile;

impl KeyFile {
    /// Reads the key in `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<VaultKey> {
        let path = path.as_ref();
        let bytes = Zeroizing::new(std::fs::read(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?);
        if bytes.len() == 32 {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes);
            return Ok(VaultKey::from_bytes(k));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::Key(format!(
                "{}: not a key file (neither 32 bytes nor hex)",
                path.display()
            ))
        })?;
        VaultKey::from_hex(text).map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    /// Reads the key in `path`, or creates the file with a fresh random key (mode 0600).
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<VaultKey> {
        let path = path.as_ref();
        if path.exists() {
            return Self::load(path);
        }
        let key = VaultKey::generate();
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(mut f) => {
                use std::io::Write;
                let mut text = Zeroizing::new(key.to_hex().expose_secret().to_owned());
                text.push('\n');
                f.write_all(text.as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|source| Error::Io {
                        path: path.display().to_string(),
                        source,
                    })?;
                Ok(key)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(source) => Err(Error::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }
}

/// The vault key from `MDMSYNC_KEY` if set, else from the key file (created if missing).
pub fn resolve_key(key_file: impl AsRef<Path>) -> Result<VaultKey> {
    match VaultKey::from_env()? {
        Some(k) => Ok(k),
        None => KeyFile::load_or_create(key_file),
    }
}

/// Credentials encrypted in the store's database (table `credentials`).
///
/// Cheap to clone; `Send + Sync`. The async [`CredentialVault`] methods run on tokio's
/// blocking pool.
#[derive(Clone)]
pub struct SqliteVault {
    inner: Arc<VaultInner>,
}

struct VaultInner {
    store: SqliteEventStore,
    key: RwLock<VaultKey>,
}

impl std::fmt::Debug for SqliteVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteVault")
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

fn associated_data(workspace: WorkspaceId) -> Vec<u8> {
    format!("mdmsync-credentials-v1|{workspace}").into_bytes()
}

fn encrypt(
    key: &VaultKey,
    workspace: WorkspaceId,
    creds: &Credentials,
) -> Result<(Vec<u8>, Vec<u8>)> {
    let fields: BTreeMap<&str, &str> = creds.iter().map(|(k, v)| (k, v.expose_secret())).collect();
    let capacity = 64
        + fields
            .iter()
            .map(|(k, v)| 2 * (k.len() + v.len()) + 8)
            .sum::<usize>();
    let mut plain = Zeroizing::new(Vec::with_capacity(capacity));
    serde_json::to_writer(
        &mut *plain,
        &serde_json::json!({ "provider": creds.provider(), "fields": fields }),
    )
    .map_err(|e| Error::Key(format!("cannot encode credentials: {e}")))?;
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let aad = associated_data(workspace);
    let ciphertext = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Backend("encryption failed".into()))?;
    Ok((nonce.to_vec(), ciphertext))
}

#[derive(serde::Deserialize)]
struct Plain {
    provider: Provider,
    fields: BTreeMap<String, String>,
}

fn decrypt(
    key: &VaultKey,
    workspace: WorkspaceId,
    nonce: &[u8],
    ciphertext: &[u8],
) -> Result<Credentials> {
    if nonce.len() != 24 {
        return Err(VaultError::Decrypt.into());
    }
    let aad = associated_data(workspace);
    let plain = Zeroizing::new(
        key.cipher()
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Decrypt)?,
    );
    let parsed: Plain = serde_json::from_slice(&plain).map_err(|_| VaultError::Decrypt)?;
    let provider = parsed.provider;
    Credentials::new(
        provider,
        parsed
            .fields
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v))),
    )
    .map_err(|e| {
        VaultError::Backend(format!(
            "stored {} credentials no longer fit the provider's fields ({e}); save them again",
            provider.display_name()
        ))
        .into()
    })
}

impl SqliteVault {
    /// A vault in `store`'s database, with `key`.
    pub fn new(store: &SqliteEventStore, key: VaultKey) -> Self {
        Self {
            inner: Arc::new(VaultInner {
                store: store.clone(),
                key: RwLock::new(key),
            }),
        }
    }

    /// A vault in the database file at `path`.
    pub fn open(path: impl AsRef<Path>, key: VaultKey) -> Result<Self> {
        Ok(Self::new(&SqliteEventStore::open(path)?, key))
    }

    /// Stores (or replaces) a workspace's credentials. Blocking.
    pub fn save_blocking(&self, workspace: WorkspaceId, creds: &Credentials) -> Result<()> {
        let (nonce, ciphertext) = {
            let key = self
                .inner
                .key
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            encrypt(&key, workspace, creds)?
        };
        self.inner.store.with_writer(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO credentials (workspace_id, nonce, ciphertext, updated_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    workspace.to_string(),
                    nonce,
                    ciphertext,
                    format_time(chrono::Utc::now())
                ],
            )?;
            Ok(())
        })
    }

    /// A workspace's credentials, if stored. Blocking.
    pub fn load_blocking(&self, workspace: WorkspaceId) -> Result<Option<Credentials>> {
        let row: Option<(Vec<u8>, Vec<u8>)> = self.inner.store.with_reader(|conn| {
            Ok(conn
                .query_row(
                    "SELECT nonce, ciphertext FROM credentials WHERE workspace_id = ?1",
                    [workspace.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?)
        })?;
        let key = self
            .inner
            .key
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        row.map(|(n, c)| decrypt(&key, workspace, &n, &c))
            .transpose()
    }

    /// Forgets a workspace's credentials. Blocking.
    pub fn remove_blocking(&self, workspace: WorkspaceId) -> Result<()> {
        self.inner.store.with_writer(|conn| {
            conn.execute(
                "DELETE FROM credentials WHERE workspace_id = ?1",
                [workspace.to_string()],
            )?;
            Ok(())
        })
    }

    /// Re-encrypts every record from `old` to `new` in one transaction (all or nothing), then
    /// uses `new`. Fails with [`VaultError::Decrypt`] if `old` does not open every record.
    /// Returns how many records were re-encrypted.
    pub fn rotate_key(&self, old: &VaultKey, new: VaultKey) -> Result<usize> {
        let mut key = self
            .inner
            .key
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let n = self.inner.store.with_writer(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let rows: Vec<(String, Vec<u8>, Vec<u8>)> = tx
                .prepare("SELECT workspace_id, nonce, ciphertext FROM credentials")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let now = format_time(chrono::Utc::now());
            for (id, nonce, ciphertext) in &rows {
                let ws: WorkspaceId = id.parse().map_err(|_| VaultError::Decrypt)?;
                let creds = decrypt(old, ws, nonce, ciphertext)?;
                let (nonce, ciphertext) = encrypt(&new, ws, &creds)?;
                tx.execute(
                    "UPDATE credentials SET nonce = ?2, ciphertext = ?3, updated_at = ?4 WHERE workspace_id = ?1",
                    params![id, nonce, ciphertext, now],
                )?;
            }
            tx.commit()?;
            Ok(rows.len())
        })?;
        *key = new;
        Ok(n)
    }
}

impl SqliteVault {
    async fn blocking<T, F>(&self, f: F) -> Result<T, VaultError>
    where
        T: Send + 'static,
        F: FnOnce(&SqliteVault) -> Result<T> + Send + 'static,
    {
        let this = self.clone();
        let run = move || f(&this).map_err(VaultError::from);
        match tokio::runtime::Handle::try_current() {
            Ok(h) => match h.spawn_blocking(run).await {
                Ok(r) => r,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => Err(VaultError::Backend(format!(
                    "the vault task was cancelled ({e}); retry"
                ))),
            },
            Err(_) => run(),
        }
    }
}

#[async_trait]
impl CredentialVault for SqliteVault {
    async fn save(
        &self,
        workspace: WorkspaceId,
        credentials: &Credentials,
    ) -> Result<(), VaultError> {
        let creds = credentials.clone();
        self.blocking(move |v| v.save_blocking(workspace, &creds))
            .await
    }

    async fn load(&self, workspace: WorkspaceId) -> Result<Option<Credentials>, VaultError> {
        self.blocking(move |v| v.load_blocking(workspace)).await
    }

    async fn remove(&self, workspace: WorkspaceId) -> Result<(), VaultError> {
        self.blocking(move |v| v.remove_blocking(workspace)).await
    }
}
