//! Unit tests: credential parsing, feature gating, overrides. No network.

use super::*;

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Valid-looking credentials for each provider (never sent anywhere).
fn sample_credentials(provider: Provider) -> Credentials {
    let fields: &[(&str, &str)] = match provider {
        Provider::Jamf => &[
            ("host", "acme.jamfcloud.com"),
            ("client_id", "client"),
            ("client_secret", "s3cret-jamf"),
        ],
        Provider::Iru => &[("host", "acme.api.kandji.io"), ("api_token", "s3cret-iru")],
        Provider::SimpleMdm => &[("api_key", "s3cret-simplemdm")],
        Provider::Fleet => &[("host", "fleet.example.com"), ("api_token", "s3cret-fleet")],
        Provider::JumpCloud => &[("api_key", "s3cret-jumpcloud")],
        Provider::Intune => &[
            ("tenant_id", "7d0c5b3e-0000-4000-8000-00000000a11c"),
            ("client_id", "client"),
            ("client_secret", "s3cret-intune"),
        ],
    };
    parse_credentials(provider, pairs(fields)).unwrap()
}

#[test]
fn p_parse_credentials_names_the_missing_key() {
    let err =
        parse_credentials(Provider::Fleet, pairs(&[("host", "fleet.example.com")])).unwrap_err();
    assert!(
        matches!(
            err,
            CredentialsError::Missing {
                key: "api_token",
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("`api_token`") && msg.contains("Fleet"),
        "{msg}"
    );
    // A blank value counts as missing.
    let err = parse_credentials(Provider::SimpleMdm, pairs(&[("api_key", "  ")])).unwrap_err();
    assert!(err.to_string().contains("`api_key`"), "{err}");
}

#[test]
fn p_parse_credentials_names_the_unknown_key_and_the_expected_ones() {
    let err = parse_credentials(
        Provider::JumpCloud,
        pairs(&[("api_key", "k"), ("host", "console.jumpcloud.com")]),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("`host`"), "{msg}");
    assert!(msg.contains("api_key, org_id"), "{msg}");
    // Keys are case- and space-insensitive; values are trimmed; org_id is optional.
    let c = parse_credentials(Provider::JumpCloud, pairs(&[(" API_KEY ", " k ")])).unwrap();
    assert_eq!(c.provider(), Provider::JumpCloud);
    assert!(c.get("api_key").is_some() && c.get("org_id").is_none());
}

#[test]
fn every_built_provider_connects_and_the_others_are_not_built() {
    for p in Provider::ALL {
        let result = connect(p, &sample_credentials(p), &ConnectOptions::default());
        match result {
            Err(ConnectError::ProviderNotBuilt(q)) => {
                assert_eq!(q, p);
                assert!(!is_built(p), "{p:?} is built but was refused");
            }
            Ok(client) => {
                assert!(is_built(p), "{p:?}");
                assert_eq!(client.provider(), p);
            }
            Err(e) => panic!("{p:?}: {e}"),
        }
    }
    assert_eq!(
        built_providers(),
        Provider::ALL
            .into_iter()
            .filter(|p| is_built(*p))
            .collect::<Vec<_>>()
    );
}

#[cfg(not(feature = "jamf"))]
#[test]
fn a_build_without_jamf_refuses_jamf() {
    let err = connect(
        Provider::Jamf,
        &sample_credentials(Provider::Jamf),
        &ConnectOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(
        err,
        ConnectError::ProviderNotBuilt(Provider::Jamf)
    ));
    assert!(err.to_string().contains("feature `jamf`"), "{err}");
}

#[cfg(not(feature = "fleet"))]
#[test]
fn a_build_without_fleet_refuses_fleet() {
    let err = connect(
        Provider::Fleet,
        &sample_credentials(Provider::Fleet),
        &ConnectOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(
        err,
        ConnectError::ProviderNotBuilt(Provider::Fleet)
    ));
    assert!(!built_providers().contains(&Provider::Fleet));
}

#[cfg(not(feature = "jumpcloud"))]
#[test]
fn a_build_without_jumpcloud_refuses_jumpcloud() {
    let err = connect(
        Provider::JumpCloud,
        &sample_credentials(Provider::JumpCloud),
        &ConnectOptions::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(
        err,
        ConnectError::ProviderNotBuilt(Provider::JumpCloud)
    ));
}

#[cfg(all(
    feature = "jamf",
    feature = "intune",
    feature = "iru",
    feature = "simplemdm",
    feature = "fleet",
    feature = "jumpcloud"
))]
#[test]
fn the_default_build_has_all_six_providers() {
    assert_eq!(built_providers(), Provider::ALL);
}

#[test]
fn credentials_of_another_provider_are_refused_without_showing_them() {
    let err = connect(
        Provider::Fleet,
        &sample_credentials(Provider::Iru),
        &ConnectOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), Some(ErrorKind::Unauthorized));
    let msg = err.to_string();
    assert!(
        msg.contains("Iru") && msg.contains("host, api_token"),
        "{msg}"
    );
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[test]
fn p1_a_login_url_is_refused_for_providers_other_than_intune() {
    let options = ConnectOptions {
        login_url: Some("https://login.example".into()),
        ..ConnectOptions::default()
    };
    let err = connect(
        Provider::JumpCloud,
        &sample_credentials(Provider::JumpCloud),
        &options,
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound));
    assert!(
        err.to_string().contains("only applies to Microsoft Intune"),
        "{err}"
    );
}

#[test]
fn p1_region_names_resolve_to_the_catalogue_urls() {
    assert_eq!(
        resolve_base_url(Provider::JumpCloud, Some(" EU ")).as_deref(),
        Some("https://console.eu.jumpcloud.com/api")
    );
    assert_eq!(
        resolve_base_url(Provider::Intune, Some("us-gov")).as_deref(),
        Some("https://graph.microsoft.us/v1.0")
    );
    // Tenant-host providers have no regions: the value is a host.
    assert_eq!(
        resolve_base_url(Provider::Fleet, Some("eu")).as_deref(),
        Some("eu")
    );
    assert_eq!(resolve_base_url(Provider::Fleet, Some("  ")), None);
}

#[cfg(feature = "jumpcloud")]
#[test]
fn p1_the_eu_region_gives_eu_console_links() {
    let options = ConnectOptions {
        base_url: Some("eu".into()),
        ..ConnectOptions::default()
    };
    let client = connect(
        Provider::JumpCloud,
        &sample_credentials(Provider::JumpCloud),
        &options,
    )
    .unwrap();
    assert_eq!(
        client
            .console_url(&"5d2e1f00a1b2c3d4e5f60001".into())
            .as_deref(),
        Some("https://console.eu.jumpcloud.com/#/devices/5d2e1f00a1b2c3d4e5f60001/details")
    );
}

#[cfg(feature = "fleet")]
#[test]
fn p1_base_url_replaces_the_host_of_tenant_host_providers() {
    let options = ConnectOptions {
        base_url: Some("https://fleet.internal.example:8443".into()),
        ..ConnectOptions::default()
    };
    let client = connect(
        Provider::Fleet,
        &sample_credentials(Provider::Fleet),
        &options,
    )
    .unwrap();
    assert_eq!(
        client.console_url(&"9".into()).as_deref(),
        Some("https://fleet.internal.example:8443/hosts/9")
    );
}

#[cfg(feature = "fleet")]
#[test]
fn e3_unusable_urls_and_ca_certificates_are_config_errors() {
    let creds = sample_credentials(Provider::Fleet);
    let insecure = ConnectOptions {
        base_url: Some("http://fleet.example.com".into()),
        ..ConnectOptions::default()
    };
    let err = connect(Provider::Fleet, &creds, &insecure).err().unwrap();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
    assert!(err.to_string().contains("https"), "{err}");
    let bad_ca = ConnectOptions {
        extra_ca_pem: vec!["not a certificate".into()],
        ..ConnectOptions::default()
    };
    let err = connect(Provider::Fleet, &creds, &bad_ca).err().unwrap();
    assert_eq!(err.kind(), Some(ErrorKind::SslError), "{err}");
}

#[test]
fn p5_an_http_override_keeps_the_documented_request_budget() {
    let iru = default_http(Provider::Iru);
    assert_eq!(iru.rate_limit.map(|r| r.requests), Some(10_000));
    let options = ConnectOptions {
        http: Some(HttpConfig {
            max_concurrent_per_host: 2,
            ..HttpConfig::default()
        }),
        extra_ca_pem: vec!["PEM".into()],
        ..ConnectOptions::default()
    };
    let http = http_for(&iru, &options);
    assert_eq!(http.max_concurrent_per_host, 2);
    assert_eq!(http.rate_limit, iru.rate_limit);
    assert_eq!(http.extra_ca_pem, ["PEM"]);
    // Without an override: the provider's default plus the CA.
    let http = http_for(&iru, &ConnectOptions::default());
    assert_eq!(http.max_concurrent_per_host, iru.max_concurrent_per_host);
}

#[cfg(feature = "intune")]
#[test]
fn p1_intune_takes_a_login_url_and_a_national_cloud_by_name() {
    let options = ConnectOptions {
        base_url: Some("us-gov".into()),
        login_url: Some("https://login.microsoftonline.us".into()),
        ..ConnectOptions::default()
    };
    let client = connect(
        Provider::Intune,
        &sample_credentials(Provider::Intune),
        &options,
    )
    .unwrap();
    assert_eq!(client.provider(), Provider::Intune);
    let bad = ConnectOptions {
        login_url: Some("http://login.example".into()),
        ..ConnectOptions::default()
    };
    let err = connect(
        Provider::Intune,
        &sample_credentials(Provider::Intune),
        &bad,
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), Some(ErrorKind::NotFound), "{err}");
}
