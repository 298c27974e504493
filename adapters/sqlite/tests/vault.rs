//! C2: credentials encrypted at rest; the key never in the database; rotation re-encrypts.

use mdmsync_core::{CredentialVault, Credentials, Provider, VaultError, WorkspaceId};
use mdmsync_sqlite::{KeyFile, SqliteEventStore, SqliteVault, VaultKey};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

const SECRET: &str = "s3cr3t-Needle-0xDEADBEEF";
const HOST: &str = "needle-host.jamfcloud.example";

fn creds(secret: &str) -> Credentials {
    Credentials::new(
        Provider::Jamf,
        [
            ("host", HOST),
            ("client_id", "client-needle"),
            ("client_secret", secret),
        ]
        .map(|(k, v)| (k.to_owned(), SecretString::from(v.to_owned()))),
    )
    .unwrap()
}

fn ws(n: u128) -> WorkspaceId {
    WorkspaceId(Uuid::from_u128(0x77_0000 + n))
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn database_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("vault.db") {
            all.extend(std::fs::read(&path).unwrap());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_the_secret_is_not_in_the_database_file_or_its_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let key_path = dir.path().join("key");
    let key = KeyFile::load_or_create(&key_path).unwrap();
    let key_hex = key.to_hex().expose_secret().to_owned();
    let vault = SqliteVault::open(&path, key).unwrap();
    vault.save(ws(1), &creds(SECRET)).await.unwrap();
    vault.save(ws(2), &creds(SECRET)).await.unwrap();
    let back = vault.load(ws(1)).await.unwrap().unwrap();
    assert_eq!(back.require("client_secret").expose_secret(), SECRET);
    assert_eq!(back.require("host").expose_secret(), HOST);
    assert_eq!(back.provider(), Provider::Jamf);
    assert!(
        std::fs::metadata(dir.path().join("vault.db-wal")).is_ok(),
        "the WAL exists and is checked too"
    );
    let bytes = database_bytes(dir.path());
    assert!(bytes.len() > 4096);
    assert!(
        !contains(&bytes, SECRET),
        "the secret is in the database file"
    );
    assert!(!contains(&bytes, HOST), "all fields are encrypted");
    assert!(!contains(&bytes, "client-needle"));
    assert!(
        !contains(&bytes, &key_hex),
        "the key is not in the database"
    );
    // Sanity check of the grep: the workspace id is stored in clear, and is found.
    assert!(contains(&bytes, &ws(1).to_string()));
    assert!(!format!("{vault:?}").contains(&key_hex));
    assert_eq!(
        format!("{:?}", VaultKey::generate()),
        "VaultKey([REDACTED])"
    );
}

#[test]
fn c2_a_wrong_key_or_a_record_moved_to_another_workspace_does_not_decrypt() {
    let store = SqliteEventStore::open_in_memory().unwrap();
    let vault = SqliteVault::new(&store, VaultKey::from_bytes([7; 32]));
    vault.save_blocking(ws(1), &creds(SECRET)).unwrap();
    let other = SqliteVault::new(&store, VaultKey::from_bytes([8; 32]));
    let err = other.load_blocking(ws(1)).unwrap_err();
    assert!(
        matches!(err, mdmsync_sqlite::Error::Vault(VaultError::Decrypt)),
        "{err:?}"
    );
    assert!(!err.to_string().contains(SECRET));
    // Associated data: the same ciphertext under another workspace id fails.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let v = SqliteVault::open(&path, VaultKey::from_bytes([7; 32])).unwrap();
    v.save_blocking(ws(1), &creds(SECRET)).unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "INSERT INTO credentials (workspace_id, nonce, ciphertext, updated_at)
             SELECT ?1, nonce, ciphertext, updated_at FROM credentials WHERE workspace_id = ?2",
            [ws(2).to_string(), ws(1).to_string()],
        )
        .unwrap();
    assert!(matches!(
        v.load_blocking(ws(2)),
        Err(mdmsync_sqlite::Error::Vault(VaultError::Decrypt))
    ));
    assert!(v.load_blocking(ws(1)).unwrap().is_some());
    assert!(v.load_blocking(ws(3)).unwrap().is_none());
    v.remove_blocking(ws(1)).unwrap();
    assert!(v.load_blocking(ws(1)).unwrap().is_none());
}

#[test]
fn c2_each_save_uses_a_fresh_nonce() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vault.db");
    let v = SqliteVault::open(&path, VaultKey::from_bytes([1; 32])).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let read = || -> (Vec<u8>, Vec<u8>) {
        conn.query_row(
            "SELECT nonce, ciphertext FROM credentials WHERE workspace_id = ?1",
            [ws(1).to_string()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    v.save_blocking(ws(1), &creds(SECRET)).unwrap();
    let a = read();
    v.save_blocking(ws(1), &creds(SECRET)).unwrap();
    let b = read();
    assert_eq!(a.0.len(), 24, "XChaCha20 nonce");
    assert_ne!(a.0, b.0);
    assert_ne!(a.1, b.1);
}

#[test]
fn c2_rotating_the_key_reencrypts_everything_or_nothing() {
    let store = SqliteEventStore::open_in_memory().unwrap();
    let old = VaultKey::from_bytes([1; 32]);
    let vault = SqliteVault::new(&store, VaultKey::from_bytes([1; 32]));
    for n in 0..3 {
        vault
            .save_blocking(ws(n), &creds(&format!("{SECRET}{n}")))
            .unwrap();
    }
    // A wrong "old" key changes nothing.
    let err = vault
        .rotate_key(
            &VaultKey::from_bytes([9; 32]),
            VaultKey::from_bytes([2; 32]),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        mdmsync_sqlite::Error::Vault(VaultError::Decrypt)
    ));
    assert!(
        vault.load_blocking(ws(0)).unwrap().is_some(),
        "still the old key"
    );
    assert_eq!(
        vault
            .rotate_key(&old, VaultKey::from_bytes([2; 32]))
            .unwrap(),
        3
    );
    for n in 0..3 {
        let c = vault.load_blocking(ws(n)).unwrap().unwrap();
        assert_eq!(
            c.require("client_secret").expose_secret(),
            format!("{SECRET}{n}")
        );
    }
    let stale = SqliteVault::new(&store, VaultKey::from_bytes([1; 32]));
    assert!(
        stale.load_blocking(ws(0)).is_err(),
        "the old key no longer opens them"
    );
    let fresh = SqliteVault::new(&store, VaultKey::from_bytes([2; 32]));
    assert!(fresh.load_blocking(ws(2)).unwrap().is_some());
}

#[test]
fn key_file_is_created_owner_only_and_reads_hex_or_raw() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mdmsync.key");
    let created = KeyFile::load_or_create(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    let again = KeyFile::load_or_create(&path).unwrap();
    assert_eq!(
        created.to_hex().expose_secret(),
        again.to_hex().expose_secret(),
        "an existing key file is kept"
    );
    let raw = dir.path().join("raw.key");
    std::fs::write(&raw, [0xAB; 32]).unwrap();
    assert_eq!(
        KeyFile::load(&raw).unwrap().to_hex().expose_secret(),
        "ab".repeat(32)
    );
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not a key").unwrap();
    let err = KeyFile::load(&bad).unwrap_err().to_string();
    assert!(err.contains("64 hex digits"), "{err}");
    assert!(VaultKey::from_hex(&"0".repeat(63)).is_err());
    assert!(VaultKey::from_hex(&format!(" {} \n", "1f".repeat(32))).is_ok());
}
