//! # mdmsync-simplemdm
//!
//! The SimpleMDM adapter of mdmsync: implements the core's
//! [`MdmClient`](mdmsync_core::MdmClient) port on top of `mdmsync-http`. SimpleMDM
//! **assignment groups** are the device groups, their members embedded in each group
//! (`relationships.devices.data`); a device is identified by its integer id everywhere
//! (snapshot members, look-ups, refresh, console links: G3). SimpleMDM has no assigned user,
//! so a device's display name (M1) is its name.
//!
//! - [`SimpleMdmConfig`]: API base (`https://a.simplemdm.com/api/v1`, overridable, P1), the API
//!   key (HTTP Basic user, empty password), console URL, HTTP settings with a request budget
//!   of about one request per second ([`DEFAULT_RATE_LIMIT`], configurable), look-up strategy.
//! - [`SimpleMdmClient`]: `SimpleMdmClient::new(config)`, then the port's methods.
//! - [`wire`]: the JSON shapes read.
//!
//! Endpoints, permissions and limits: `docs/providers/simplemdm.md`.
//!
//! ```
//! use mdmsync_core::{Credentials, MdmClient, Provider};
//! use mdmsync_simplemdm::{SimpleMdmClient, SimpleMdmConfig};
//! use secrecy::SecretString;
//!
//! let credentials = Credentials::new(
//!     Provider::SimpleMdm,
//!     [("api_key".to_owned(), SecretString::from("key"))],
//! )
//! .unwrap();
//! let client =
//!     SimpleMdmClient::new(SimpleMdmConfig::from_credentials(&credentials, None).unwrap()).unwrap();
//! assert_eq!(
//!     client.console_url(&"121".into()).as_deref(),
//!     Some("https://a.simplemdm.com/admin/devices/121")
//! );
//! ```

mod client;
mod config;
pub mod wire;

pub use client::{PAGE_SIZE, SimpleMdmClient};
pub use config::{
    AUTO_PER_SERIAL_MAX, DEFAULT_BASE_URL, DEFAULT_OPERATION_TIMEOUT, DEFAULT_RATE_LIMIT,
    LookupStrategy, SimpleMdmConfig,
};
