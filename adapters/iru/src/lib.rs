//! # mdmsync-iru
//!
//! The Iru (formerly Kandji) adapter of mdmsync: implements the core's
//! [`MdmClient`](mdmsync_core::MdmClient) port on top of `mdmsync-http`. Iru **tags** are the
//! device groups; a device is identified by its `device_id` UUID everywhere (snapshot members,
//! look-ups, blank push, console links: G3).
//!
//! - [`IruConfig`]: API URL (either brand, `*.api.kandji.io` or `*.api.iru.com`, US or EU, as
//!   pasted or as a bare host), bearer token, web console URL, HTTP settings with the P5 budget
//!   of 10,000 requests per hour, snapshot and look-up strategies.
//! - [`IruClient`]: `IruClient::new(config)`, then the port's methods.
//! - [`wire`]: the JSON shapes read, with the `user: ""` and tag-name pitfalls handled.
//!
//! Endpoints, permissions and limits: `docs/providers/iru.md`.
//!
//! ```
//! use mdmsync_core::{Credentials, MdmClient, Provider};
//! use mdmsync_iru::{IruClient, IruConfig};
//! use secrecy::SecretString;
//!
//! let credentials = Credentials::new(
//!     Provider::Iru,
//!     [
//!         ("host".to_owned(), SecretString::from("https://acme.api.iru.com")),
//!         ("api_token".to_owned(), SecretString::from("token")),
//!     ],
//! )
//! .unwrap();
//! let client = IruClient::new(IruConfig::from_credentials(&credentials, None).unwrap()).unwrap();
//! assert_eq!(
//!     client.console_url(&"1c6a2b0e-0000-4000-8000-000000000001".into()).as_deref(),
//!     Some("https://acme.iru.com/devices/1c6a2b0e-0000-4000-8000-000000000001")
//! );
//! ```

mod client;
mod config;
pub mod wire;

pub use client::{DEVICE_PAGE_SIZE, IruClient};
pub use config::{
    AUTO_PER_SERIAL_MAX, DEFAULT_OPERATION_TIMEOUT, IruConfig, LookupStrategy, SnapshotStrategy,
    derive_web_url, parse_api_url,
};
