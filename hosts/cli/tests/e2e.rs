//! End to end: the `mdmsync` binary against `mdmsim`, for every provider, driven only through
//! the CLI contract (docs/cli.md). Rule numbers refer to spec.md.

mod common;

use common::*;
use mdmsim::{FaultKind, FaultRule};
use mdmsync_core::Provider;
use serde_json::Value;
use std::collections::BTreeSet;

/// The injected faults a sync must survive without touching a group (G8), and the E1 kind
/// each must be reported as.
fn faults() -> Vec<(FaultKind, &'static str)> {
    vec![
        (FaultKind::Unauthorized, "unauthorized"),
        (FaultKind::Forbidden, "forbidden"),
        (FaultKind::NotFound, "not_found"),
        (FaultKind::InternalServerError, "server_error"),
        (
            FaultKind::ServiceUnavailable {
                retry_after_secs: None,
            },
            "server_error",
        ),
        (
            FaultKind::TooManyRequests {
                retry_after_secs: 0,
            },
            "server_error",
        ),
        (
            FaultKind::Status {
                status: 502,
                retry_after_secs: None,
            },
            "server_error",
        ),
        (FaultKind::MalformedJson, "server_error"),
        (FaultKind::TruncatedJson, "server_error"),
        (FaultKind::DropConnection, "connection_failed"),
        // Past the 2 s request timeout the tests set (MDMSYNC_HTTP_TIMEOUT_SECS).
        (FaultKind::Delay { millis: 2_500 }, "connection_failed"),
    ]
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn history(cli: &Cli, ws: &str) -> Vec<Value> {
    cli.ok(&["history", "--workspace", ws], 0)
        .as_array()
        .unwrap()
        .clone()
}

fn events_of_sync<'a>(h: &'a [Value], sync_id: &str) -> Vec<&'a str> {
    h.iter()
        .filter(|e| e["sync_id"] == sync_id)
        .map(|e| s(&e["type"]))
        .collect()
}

fn connect(cli: &Cli, sim: &Sim, ws: &str, secret: &str) -> (i32, Value) {
    let args = sim.connect_args(ws, secret);
    cli.json(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The whole story for one provider.
fn story(provider: Provider) {
    let slug = provider.slug();
    let secret = format!("e2e-{slug}-secret-{}", nonce());
    let wrong = format!("e2e-{slug}-wrong-{}", nonce());
    let scenario = scenario(&secret);
    let sim = Sim::start(provider, scenario.clone(), false);
    let ctl = sim.control();
    let cli = Cli::new();
    let expected = expected_groups(provider, &scenario);

    // A Pro workspace.
    let created = cli.ok(
        &["workspace", "create", "--name", "Acme Pro", "--plan", "pro"],
        0,
    );
    assert_keys(&created, &["id", "name", "plan"]);
    assert_eq!(created["plan"], "pro");
    let ws = s(&created["id"]).to_owned();
    let ws = ws.as_str();

    // C1: a wrong secret fails the test call, exit 2, and nothing is saved.
    let (code, v) = connect(&cli, &sim, ws, &wrong);
    assert_eq!(code, 2, "{v}");
    assert_keys(&v, &["ok", "error_kind", "message"]);
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_kind"], "unauthorized", "{v}");
    let st = cli.ok(&["status", "--workspace", ws], 0);
    assert_eq!(st["provider"], Value::Null);
    assert!(
        !history(&cli, ws)
            .iter()
            .any(|e| e["type"] == "ProviderConnected")
    );

    // The right secret: through a credentials file (JSON for some providers, KEY=VALUE lines
    // for others), or --credential flags.
    let mut args = sim.connect_args(ws, &secret);
    let creds = sim.credentials(&secret);
    match provider {
        Provider::Jamf | Provider::Fleet => {
            let json = serde_json::to_string(&creds).unwrap();
            let f = write(cli.dir.path(), "creds.json", &json);
            args.retain(|a| !a.contains('=') && a != "--credential");
            args.push("--credentials-file".into());
            args.push(f.display().to_string());
        }
        Provider::SimpleMdm | Provider::Intune => {
            let lines: String = creds
                .iter()
                .map(|(k, v)| format!("# {k}\n{k}={v}\n"))
                .collect();
            let f = write(cli.dir.path(), "creds.env", &lines);
            args.retain(|a| !a.contains('=') && a != "--credential");
            args.push("--credentials-file".into());
            args.push(f.display().to_string());
        }
        _ => {}
    }
    let (code, v) = cli.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{v}");
    assert_eq!(v, serde_json::json!({"ok": true, "provider": slug}));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cli.key_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is created 0600");
    }

    // C3/T3: the provider was set, so it synced at once; no device is known yet.
    let st = cli.ok(&["status", "--workspace", ws], 0);
    assert_keys(
        &st,
        &[
            "plan",
            "provider",
            "last_sync",
            "last_error",
            "next_scheduled_at",
            "manual_allowed_at",
            "held",
        ],
    );
    assert_eq!(st["provider"], slug);
    assert_eq!(st["last_sync"]["outcome"], "succeeded");
    assert_keys(
        &st["last_sync"],
        &["sync_id", "started_at", "finished_at", "outcome"],
    );
    let groups = groups_by_name(&cli.ok(&["groups", "list", "--workspace", ws], 0));
    assert_eq!(
        groups.keys().collect::<BTreeSet<_>>(),
        expected.keys().collect()
    );
    assert!(
        groups
            .values()
            .all(|(src, m)| src == "synced" && m.is_empty())
    );

    // Devices: three from CSV, two from JSON; importing again adds nothing.
    let dev = |id: u64| scenario.devices.iter().find(|d| d.id == id).unwrap();
    let csv: String = std::iter::once("serial_number,name\n".to_owned())
        .chain((1..=3).map(|i| {
            format!(
                "{},\"{}\"\n",
                dev(i).serial_number.clone().unwrap(),
                dev(i).device_name
            )
        }))
        .collect();
    let csv = write(cli.dir.path(), "devices.csv", &csv);
    let json: Vec<Value> = (4..=5)
        .map(|i| serde_json::json!({"serial_number": dev(i).serial_number, "name": dev(i).device_name}))
        .collect();
    let jsonf = write(
        cli.dir.path(),
        "devices.json",
        &serde_json::to_string(&json).unwrap(),
    );
    let csv = csv.display().to_string();
    let jsonf = jsonf.display().to_string();
    let v = cli.ok(&["devices", "import", "--workspace", ws, &csv], 0);
    assert_eq!(v, serde_json::json!({"imported": 3}));
    let v = cli.ok(&["devices", "import", "--workspace", ws, &jsonf], 0);
    assert_eq!(v, serde_json::json!({"imported": 2}));
    let v = cli.ok(&["devices", "import", "--workspace", ws, &csv], 0);
    assert_eq!(v, serde_json::json!({"imported": 0}));

    // M1: metadata refresh finds every device by serial.
    let v = cli.ok(&["metadata", "refresh", "--workspace", ws], 0);
    assert_keys(&v, &["refreshed", "not_found", "skipped", "ambiguous"]);
    assert_eq!(v["refreshed"], 5, "{v}");
    assert_eq!(v["not_found"], 0);
    let devices = cli.ok(&["devices", "list", "--workspace", ws], 0);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 5);
    for d in devices {
        assert_keys(
            d,
            &[
                "id",
                "serial_number",
                "name",
                "mdm_device_id",
                "mdm_user_id",
                "mdm_display_name",
                "console_url",
            ],
        );
        assert!(d["mdm_device_id"].is_string(), "{d}");
        assert!(d["mdm_display_name"].is_string(), "{d}");
    }
    // M3: search by display name (Ada's user name, or her device name where no user is known).
    let found = cli.ok(
        &["devices", "list", "--workspace", ws, "--search", "ADA"],
        0,
    );
    let found: Vec<_> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|d| s(&d["serial_number"]).to_owned())
        .collect();
    assert_eq!(found, vec![dev(1).serial_number.clone().unwrap()]);

    // T2: a manual sync within 15 minutes of the last one is refused, exit 4, with retry_after.
    let (code, v) = cli.json(&["sync", "--workspace", ws]);
    assert_eq!(code, 4, "{v}");
    assert_keys(
        &v,
        &[
            "sync_id",
            "outcome",
            "error_kind",
            "message",
            "retry_after",
            "report",
        ],
    );
    assert_eq!(v["outcome"], "refused");
    let retry = chrono::DateTime::parse_from_rfc3339(s(&v["retry_after"])).unwrap();
    assert!(retry > chrono::Utc::now() + chrono::TimeDelta::minutes(10));

    // --force bypasses it; the members arrive (G3).
    let v = cli.ok(&["sync", "--workspace", ws, "--force"], 0);
    assert_eq!(v["outcome"], "succeeded");
    assert_keys(
        &v["report"],
        &[
            "created",
            "renamed",
            "detached",
            "members_added",
            "members_removed",
            "unmatched_members",
        ],
    );
    let memberships: usize = expected.values().map(BTreeSet::len).sum();
    assert_eq!(v["report"]["members_added"], memberships as u64, "{v}");
    let first_full = s(&v["sync_id"]).to_owned();
    let groups_doc = cli.ok(&["groups", "list", "--workspace", ws], 0);
    for g in groups_doc.as_array().unwrap() {
        assert_keys(
            g,
            &[
                "id",
                "name",
                "source",
                "provider",
                "mdm_group_id",
                "managed_by",
                "members",
            ],
        );
        assert_eq!(g["provider"], slug);
        assert_eq!(g["managed_by"], provider.display_name());
    }
    let groups = groups_by_name(&groups_doc);
    for (name, members) in &expected {
        assert_eq!(&groups[name].1, members, "members of {name}");
    }
    let h = history(&cli, ws);
    let forced = h
        .iter()
        .find(|e| e["type"] == "SyncSucceeded" && e["sync_id"] == first_full.as_str())
        .unwrap();
    assert_eq!(
        forced["data"]["trigger"], "forced_manual",
        "recorded as such"
    );
    assert_eq!(forced["actor"], format!("operator:{OPERATOR}"));
    let position_after_first_full = forced["position"].as_u64().unwrap();

    // G9: an unchanged snapshot emits no group or membership event.
    let v = cli.ok(&["sync", "--workspace", ws, "--force"], 0);
    assert!(
        v["report"].as_object().unwrap().values().all(|n| n == 0),
        "{v}"
    );
    assert_eq!(
        events_of_sync(&history(&cli, ws), s(&v["sync_id"])),
        vec!["SyncSucceeded"]
    );

    // A dry run shows the planned events and appends nothing.
    ctl.rename_group(1, "Platform Engineering").unwrap();
    let before = history(&cli, ws).len();
    let v = cli.ok(&["sync", "--workspace", ws, "--force", "--dry-run"], 0);
    let planned: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["type"]))
        .collect();
    assert_eq!(planned, vec!["GroupRenamed", "SyncSucceeded"]);
    assert_eq!(history(&cli, ws).len(), before, "a dry run appends nothing");

    // The fleet changes: a rename (above), a move, a removed group (G2, G3).
    ctl.move_device(4, Some(1), 3).unwrap();
    ctl.remove_group(2).unwrap();
    let v = cli.ok(&["sync", "--workspace", ws, "--force"], 0);
    let r = &v["report"];
    assert_eq!(
        (
            &r["renamed"],
            &r["detached"],
            &r["members_added"],
            &r["members_removed"]
        ),
        (
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1)
        ),
        "{v}"
    );
    let groups_doc = cli.ok(&["groups", "list", "--workspace", ws], 0);
    let groups = groups_by_name(&groups_doc);
    let serial = |i: u64| dev(i).serial_number.clone().unwrap();
    assert_eq!(groups["Platform Engineering"].0, "synced");
    assert_eq!(
        groups["Platform Engineering"].1,
        [serial(1), serial(2)].into_iter().collect()
    );
    assert_eq!(
        groups["All Laptops"],
        (
            "manual".to_owned(),
            [serial(1), serial(2)].into_iter().collect()
        ),
        "a detached group keeps its name and members"
    );
    assert!(groups["Kiosks"].1.contains(&serial(4)));

    // Time travel: the groups as they were after the first full sync.
    let then = cli.ok(
        &[
            "state",
            "--workspace",
            ws,
            "--as-of",
            &position_after_first_full.to_string(),
        ],
        0,
    );
    let then = groups_by_name(&then);
    assert_eq!(then["Engineering"].1, expected["Engineering"]);
    assert!(!then.contains_key("Platform Engineering"));

    // G5: a synced group's name and members are read-only (exit 2, {"error"}); policies are not.
    let pe = groups_doc
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Platform Engineering")
        .unwrap();
    let pe_id = s(&pe["id"]).to_owned();
    let (code, v) = cli.json(&[
        "groups",
        "rename",
        "--workspace",
        ws,
        "--group",
        &pe_id,
        "--name",
        "Mine",
    ]);
    assert_eq!(code, 2);
    assert_keys(&v, &["error"]);
    assert!(s(&v["error"]).contains("managed by"), "{v}");
    let (code, v) = cli.json(&[
        "groups",
        "add",
        "--workspace",
        ws,
        "--group",
        &pe_id,
        "--device",
        &serial(3),
    ]);
    assert_eq!(code, 2, "{v}");
    let v = cli.ok(
        &[
            "groups",
            "set-policy",
            "--workspace",
            ws,
            "--group",
            &pe_id,
            "--key",
            "wifi",
            "--value",
            r#"{"ssid":"corp"}"#,
        ],
        0,
    );
    assert_eq!(v["id"], pe_id.as_str());

    // G8: every fault fails the sync (exit 2, its E1 kind) and leaves every group as it was.
    let groups_before = cli.ok(&["groups", "list", "--workspace", ws], 0);
    for (fault, kind) in faults() {
        ctl.add_fault(FaultRule::new(fault.clone()));
        let (code, v) = cli.json(&["sync", "--workspace", ws, "--force"]);
        ctl.clear_faults();
        assert_eq!(code, 2, "{fault:?}: {v}");
        assert_eq!(v["outcome"], "failed", "{fault:?}: {v}");
        assert_eq!(v["error_kind"], kind, "{fault:?}: {v}");
        assert_eq!(v["report"], Value::Null);
        assert_eq!(
            cli.ok(&["groups", "list", "--workspace", ws], 0),
            groups_before,
            "{fault:?} changed groups"
        );
        let st = cli.ok(&["status", "--workspace", ws], 0);
        assert_eq!(st["last_error"]["kind"], kind, "shown in status");
        assert_keys(&st["last_error"], &["kind", "message", "at"]);
    }

    // A1: force sync (JumpCloud has none: a clear error, exit 2).
    let (code, v) = cli.json(&["force-sync", "--workspace", ws, "--device", &serial(1)]);
    if provider == Provider::JumpCloud {
        assert_eq!(code, 2);
        assert_keys(&v, &["ok", "error_kind", "message"]);
        assert!(
            s(&v["message"]).contains("not supported by JumpCloud"),
            "{v}"
        );
    } else {
        assert_eq!((code, &v), (0, &serde_json::json!({"ok": true})));
        assert_eq!(ctl.force_syncs().len(), 1);
    }

    // G11: the MDM suddenly returns no group: held (exit 3), nothing changes.
    ctl.add_fault(FaultRule::new(FaultKind::EmptyGroupList));
    let (code, v) = cli.json(&["sync", "--workspace", ws, "--force"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["outcome"], "held");
    let held = s(&v["sync_id"]).to_owned();
    assert!(s(&v["message"]).contains(&held), "says how to confirm: {v}");
    assert_eq!(
        cli.ok(&["groups", "list", "--workspace", ws], 0),
        groups_before
    );
    let st = cli.ok(&["status", "--workspace", ws], 0);
    assert_eq!(st["held"]["sync_id"], held.as_str());
    // Confirming another id is refused without calling the MDM.
    let other = "00000000-0000-4000-8000-000000000000";
    let (code, v) = cli.json(&["sync", "--workspace", ws, "--confirm", other]);
    assert_eq!(code, 1, "{v}");
    // The operator confirms the held sync: it applies (trigger `confirmation`).
    let v = cli.ok(&["sync", "--workspace", ws, "--confirm", &held], 0);
    assert_eq!(v["outcome"], "succeeded");
    assert_eq!(v["report"]["detached"], expected.len() as u64 - 1, "{v}");
    ctl.clear_faults();
    let h = history(&cli, ws);
    let confirmed = s(&v["sync_id"]);
    assert!(events_of_sync(&h, confirmed).contains(&"SyncConfirmed"));
    assert!(h.iter().any(|e| e["sync_id"] == confirmed
        && e["type"] == "SyncSucceeded"
        && e["data"]["trigger"] == "confirmation"));
    // G7, G4: the groups come back as new synced groups, named with the provider suffix.
    let v = cli.ok(&["sync", "--workspace", ws, "--force"], 0);
    assert_eq!(v["report"]["created"], expected.len() as u64 - 1, "{v}");
    let groups = groups_by_name(&cli.ok(&["groups", "list", "--workspace", ws], 0));
    let suffixed = format!("Platform Engineering ({})", provider.display_name());
    assert_eq!(groups[&suffixed].0, "synced", "{groups:?}");
    assert_eq!(groups["Platform Engineering"].0, "manual");

    // The log is the truth: verify rebuilds the read models and finds no difference.
    let v = cli.ok(&["verify"], 0);
    assert_eq!(v, serde_json::json!({"ok": true, "differences": []}));
    let v = cli.ok(&["verify", "--workspace", ws], 0);
    assert_eq!(v["ok"], true);
    let all = history(&cli, ws).len();
    let export = cli.run(&["events", "export", "--json"]);
    assert_eq!(export.code, 0);
    let lines: Vec<Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), all, "one line per event");
    let tail = cli.run(&[
        "events",
        "export",
        "--after",
        &lines[2]["position"].to_string(),
    ]);
    assert_eq!(tail.stdout.lines().count(), lines.len() - 3);

    // G1, M5: a Free workspace does not sync groups, but metadata works.
    let free = cli.ok(
        &[
            "workspace",
            "create",
            "--name",
            "Acme Free",
            "--plan",
            "free",
        ],
        0,
    );
    let fws = s(&free["id"]).to_owned();
    let v = cli.ok(&["devices", "import", "--workspace", &fws, &csv], 0);
    assert_eq!(v["imported"], 3);
    let (code, v) = connect(&cli, &sim, &fws, &secret);
    assert_eq!((code, &v["ok"]), (0, &Value::Bool(true)), "{v}");
    let (code, v) = cli.json(&["sync", "--workspace", &fws]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["outcome"], "refused");
    assert!(s(&v["message"]).contains("free plan"), "{v}");
    let v = cli.ok(&["metadata", "refresh", "--workspace", &fws], 0);
    assert_eq!(
        v["refreshed"], 0,
        "M2: refreshed by connect less than a day ago"
    );
    let v = cli.ok(&["metadata", "refresh", "--workspace", &fws, "--force"], 0);
    assert_eq!(v["refreshed"], 3, "{v}");
    let st = cli.ok(&["status", "--workspace", &fws], 0);
    assert_eq!(st["next_scheduled_at"], Value::Null);
    assert_eq!(
        cli.ok(&["groups", "list", "--workspace", &fws], 0),
        serde_json::json!([])
    );

    let listed = cli.ok(&["workspace", "list"], 0);
    for w in listed.as_array().unwrap() {
        assert_keys(w, &["id", "name", "plan", "provider"]);
        assert_eq!(w["provider"], slug);
    }

    // C2: no secret (right or wrong) in the database, its WAL, or anything printed.
    cli.assert_secrets_absent(&[&secret, &wrong]);
}

#[test]
fn jamf_end_to_end() {
    story(Provider::Jamf);
}

#[test]
fn iru_end_to_end() {
    story(Provider::Iru);
}

#[test]
fn simplemdm_end_to_end() {
    story(Provider::SimpleMdm);
}

#[test]
fn fleet_end_to_end() {
    story(Provider::Fleet);
}

#[test]
fn jumpcloud_end_to_end() {
    story(Provider::JumpCloud);
}

#[test]
fn intune_end_to_end() {
    story(Provider::Intune);
}

/// Creates a Pro workspace connected to `sim`; returns its id.
fn connected_workspace(cli: &Cli, sim: &Sim, secret: &str) -> String {
    let created = cli.ok(
        &["workspace", "create", "--name", "Acme", "--plan", "pro"],
        0,
    );
    let ws = s(&created["id"]).to_owned();
    let (code, v) = connect(cli, sim, &ws, secret);
    assert_eq!(code, 0, "{v}");
    ws
}

/// E3 for one provider: an untrusted certificate is an `ssl_error` (at connect: nothing saved;
/// at sync: G8, nothing changed); `--ca-cert` / `MDMSYNC_CA_CERT` trust a private CA.
fn tls_story(provider: Provider) {
    let secret = format!("e2e-tls-{}-secret-{}", provider.slug(), nonce());
    let sim = Sim::start(provider, scenario(&secret), true);
    let cli = Cli::new();
    let created = cli.ok(
        &[
            "workspace",
            "create",
            "--name",
            "Self-hosted",
            "--plan",
            "pro",
        ],
        0,
    );
    let ws = s(&created["id"]).to_owned();
    // The simulator's certificate is signed by a CA nobody trusts: ssl_error, nothing saved.
    let (code, v) = connect(&cli, &sim, &ws, &secret);
    assert_eq!(code, 2, "{provider:?}: {v}");
    assert_eq!(v["error_kind"], "ssl_error", "{provider:?}: {v}");
    assert_eq!(
        cli.ok(&["status", "--workspace", &ws], 0)["provider"],
        Value::Null
    );
    // --ca-cert adds the private CA.
    let ca = write(cli.dir.path(), "ca.pem", &sim.sim.ca_cert_pem().unwrap());
    let ca = ca.display().to_string();
    let mut args = sim.connect_args(&ws, &secret);
    args.extend(["--ca-cert".to_owned(), ca.clone()]);
    let (code, v) = cli.json(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        (code, &v["ok"]),
        (0, &Value::Bool(true)),
        "{provider:?}: {v}"
    );
    let csv = write(
        cli.dir.path(),
        "d.csv",
        "serial_number\nC02SIM000001\nC02SIM000002\n",
    );
    cli.ok(
        &[
            "devices",
            "import",
            "--workspace",
            &ws,
            &csv.display().to_string(),
        ],
        0,
    );
    // Later commands take the CA from the environment (MDMSYNC_CA_CERT).
    let env = [("MDMSYNC_CA_CERT", ca.as_str())];
    let (code, v) = cli.json_env(&["metadata", "refresh", "--workspace", &ws], &env);
    assert_eq!(
        (code, &v["refreshed"]),
        (0, &Value::from(2)),
        "{provider:?}: {v}"
    );
    let (code, v) = cli.json_env(&["sync", "--workspace", &ws, "--force"], &env);
    assert_eq!(code, 0, "{provider:?}: {v}");
    let groups = cli.ok(&["groups", "list", "--workspace", &ws], 0);
    // Without it, the sync fails as an SSL error and changes nothing (G8).
    let (code, v) = cli.json(&["sync", "--workspace", &ws, "--force"]);
    assert_eq!(code, 2, "{provider:?}: {v}");
    assert_eq!(v["error_kind"], "ssl_error", "{provider:?}: {v}");
    assert_eq!(cli.ok(&["groups", "list", "--workspace", &ws], 0), groups);
    cli.assert_secrets_absent(&[&secret]);
}

#[test]
fn e3_tls_is_always_verified_and_ca_cert_trusts_a_private_ca_for_every_provider() {
    for provider in Provider::ALL {
        tls_story(provider);
    }
}

#[test]
fn t4_a_sync_while_another_process_holds_the_lease_is_refused() {
    let secret = format!("e2e-t4-secret-{}", nonce());
    let sim = Sim::start(Provider::Fleet, scenario(&secret), false);
    let cli = Cli::new();
    let ws = connected_workspace(&cli, &sim, &secret);
    let id: mdmsync_core::WorkspaceId = ws.parse().unwrap();
    let store = mdmsync_sqlite::SqliteEventStore::open(&cli.db).unwrap();
    assert_eq!(
        store.sync_lease(id).unwrap(),
        None,
        "connect released its lease"
    );
    let now = chrono::Utc::now();
    assert!(
        store
            .try_acquire_sync_lease(id, "mdmsyncd/other", now, chrono::TimeDelta::minutes(5))
            .unwrap()
    );
    let before = history(&cli, &ws).len();
    let (code, v) = cli.json(&["sync", "--workspace", &ws, "--force"]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["outcome"], "refused");
    assert!(s(&v["message"]).contains("another sync"), "{v}");
    assert!(s(&v["message"]).contains("mdmsyncd/other"), "{v}");
    assert_eq!(history(&cli, &ws).len(), before, "nothing appended");
    assert!(store.release_sync_lease(id, "mdmsyncd/other").unwrap());
    cli.ok(&["sync", "--workspace", &ws, "--force"], 0);
    assert_eq!(
        store.sync_lease(id).unwrap(),
        None,
        "the CLI releases its lease"
    );
}

#[test]
fn g6_a_deleted_synced_group_stays_excluded_until_included_again() {
    let secret = format!("e2e-g6-secret-{}", nonce());
    let sim = Sim::start(Provider::SimpleMdm, scenario(&secret), false);
    let cli = Cli::new();
    let ws = connected_workspace(&cli, &sim, &secret);
    let groups = cli.ok(&["groups", "list", "--workspace", &ws], 0);
    let kiosks = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "Kiosks")
        .unwrap()
        .clone();
    let deleted = cli.ok(
        &["groups", "delete", "--workspace", &ws, "--group", "kiosks"],
        0,
    );
    assert_eq!(deleted, kiosks, "prints the group as it was");
    let v = cli.ok(&["sync", "--workspace", &ws, "--force"], 0);
    assert_eq!(v["report"]["created"], 0, "excluded: not re-created");
    let mdm = s(&kiosks["mdm_group_id"]).to_owned();
    let v = cli.ok(
        &[
            "groups",
            "include",
            "--workspace",
            &ws,
            "--mdm-group-id",
            &mdm,
        ],
        0,
    );
    assert_eq!(v["included"], true);
    let (code, v) = cli.json(&[
        "groups",
        "include",
        "--workspace",
        &ws,
        "--mdm-group-id",
        &mdm,
    ]);
    assert_eq!(code, 2, "not excluded any more: {v}");
    assert_keys(&v, &["error"]);
    let v = cli.ok(&["sync", "--workspace", &ws, "--force"], 0);
    assert_eq!(v["report"]["created"], 1);
    let names: BTreeSet<String> =
        groups_by_name(&cli.ok(&["groups", "list", "--workspace", &ws], 0))
            .into_keys()
            .collect();
    assert!(names.contains("Kiosks"));
}

#[test]
fn g5_manual_groups_are_edited_through_the_cli_and_rule_violations_exit_2() {
    let cli = Cli::new();
    let created = cli.ok(
        &["workspace", "create", "--name", "Manual", "--plan", "free"],
        0,
    );
    let ws = s(&created["id"]).to_owned();
    let ws = ws.as_str();
    let csv = write(
        cli.dir.path(),
        "d.csv",
        "serial_number,name\nS1,One\nS2,Two\n,No serial\n",
    );
    let v = cli.ok(
        &[
            "devices",
            "import",
            "--workspace",
            ws,
            &csv.display().to_string(),
        ],
        0,
    );
    assert_eq!(
        v["imported"], 3,
        "M6: a device without serial is registered"
    );
    let g = cli.ok(&["groups", "create", "--workspace", ws, "--name", "Ops"], 0);
    assert_eq!(g["source"], "manual");
    assert_eq!(g["managed_by"], Value::Null);
    let id = s(&g["id"]).to_owned();
    let (code, v) = cli.json(&["groups", "create", "--workspace", ws, "--name", " ops "]);
    assert_eq!(code, 2, "names are unique case-insensitively: {v}");
    assert_keys(&v, &["error"]);
    let v = cli.ok(
        &[
            "groups",
            "add",
            "--workspace",
            ws,
            "--group",
            &id,
            "--device",
            "S1",
            "S2",
        ],
        0,
    );
    assert_eq!(v["members"].as_array().unwrap().len(), 2);
    let v = cli.ok(
        &[
            "groups",
            "remove",
            "--workspace",
            ws,
            "--group",
            "OPS",
            "--device",
            "S2",
        ],
        0,
    );
    assert_eq!(v["members"].as_array().unwrap().len(), 1);
    assert_eq!(v["members"][0]["serial_number"], "S1");
    let (code, v) = cli.json(&[
        "groups",
        "add",
        "--workspace",
        ws,
        "--group",
        &id,
        "--device",
        "S9",
    ]);
    assert_eq!(code, 2, "unknown device: {v}");
    let v = cli.ok(
        &[
            "groups",
            "rename",
            "--workspace",
            ws,
            "--group",
            &id,
            "--name",
            "Operations",
        ],
        0,
    );
    assert_eq!(v["name"], "Operations");
    let (code, v) = cli.json(&[
        "groups",
        "set-policy",
        "--workspace",
        ws,
        "--group",
        &id,
        "--key",
        "k",
        "--value",
        "not json",
    ]);
    assert_eq!(code, 1, "{v}");
    let h = cli.ok(&["history", "--workspace", ws, "--group", &id], 0);
    let types: Vec<&str> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|e| s(&e["type"]))
        .collect();
    assert_eq!(
        types,
        vec![
            "GroupCreated",
            "MemberAdded",
            "MemberAdded",
            "MemberRemoved",
            "GroupRenamed"
        ]
    );
    for e in h.as_array().unwrap() {
        assert_keys(
            e,
            &[
                "position",
                "recorded_at",
                "type",
                "actor",
                "sync_id",
                "data",
            ],
        );
        assert_eq!(e["actor"], format!("operator:{OPERATOR}"), "G12");
    }
    let h = cli.ok(&["history", "--workspace", ws, "--device", "S2"], 0);
    assert_eq!(
        h.as_array().unwrap().len(),
        3,
        "registered, added, removed: {h}"
    );
    let v = cli.ok(&["groups", "delete", "--workspace", ws, "--group", &id], 0);
    assert_eq!(v["name"], "Operations");
    assert_eq!(
        cli.ok(&["groups", "list", "--workspace", ws], 0),
        serde_json::json!([])
    );
    // Time travel to a time before the group existed, and to its last position.
    let first = s(&cli.ok(&["history", "--workspace", ws], 0)[0]["recorded_at"]).to_owned();
    let then = cli.ok(&["state", "--workspace", ws, "--as-of", &first], 0);
    assert_eq!(then, serde_json::json!([]));
    let (code, v) = cli.json(&["state", "--workspace", ws, "--as-of", "yesterday"]);
    assert_eq!(code, 1, "{v}");
    assert!(s(&v["error"]).contains("RFC 3339"), "{v}");
    // Sync needs an MDM and a paid plan (G1): refused, exit 4.
    let (code, v) = cli.json(&["sync", "--workspace", ws]);
    assert_eq!((code, &v["outcome"]), (4, &Value::from("refused")), "{v}");
}

#[test]
fn plain_http_is_refused_for_remote_hosts_before_any_connection() {
    let cli = Cli::new();
    cli.ok(&["workspace", "create", "--name", "W", "--plan", "pro"], 0);
    let (code, v) = cli.json(&[
        "connect",
        "--workspace",
        "w",
        "--provider",
        "fleet",
        "--credential",
        "host=http://fleet.example.com",
        "--credential",
        "api_token=t0ken-x",
    ]);
    assert_eq!(code, 1, "{v}");
    assert!(s(&v["error"]).contains("https://"), "{v}");
    let (code, v) = cli.json(&[
        "connect",
        "--workspace",
        "w",
        "--provider",
        "kandji",
        "--base-url",
        "http://mdm.example.com",
        "--credential",
        "host=https://acme.kandji.io",
        "--credential",
        "api_token=t0ken-x",
    ]);
    assert_eq!(code, 1, "{v}");
    let (code, v) = cli.json(&[
        "connect",
        "--workspace",
        "w",
        "--provider",
        "jamf",
        "--credential",
        "host=https://h.example.com",
    ]);
    assert_eq!(code, 1, "missing fields are named: {v}");
    assert!(s(&v["error"]).contains("client_id"), "{v}");
    assert_eq!(
        cli.ok(&["status", "--workspace", "w"], 0)["provider"],
        Value::Null
    );
    cli.assert_secrets_absent(&["t0ken-x"]);
}

#[test]
fn usage_errors_exit_64_and_a_missing_database_is_not_created() {
    let cli = Cli::new();
    assert_eq!(cli.ok(&["workspace", "list"], 0), serde_json::json!([]));
    let (code, v) = cli.json(&["status", "--workspace", "x"]);
    assert_eq!(code, 1);
    assert!(s(&v["error"]).contains("workspace create"), "{v}");
    assert!(
        !cli.db.exists(),
        "a mistyped --db does not start an empty database"
    );
    let (code, v) = cli.json(&["sync", "--bogus"]);
    assert_eq!(code, 64);
    assert_keys(&v, &["error"]);
    let run = cli.run(&["sync"]);
    assert_eq!(run.code, 64);
    assert!(run.stderr.contains("--workspace"), "{}", run.stderr);
    assert_eq!(cli.run(&["--help"]).code, 0);
}

#[test]
fn the_demo_runs_the_whole_story_on_a_fresh_machine() {
    // Human-readable, temporary database: nothing left behind in the working directory.
    let cli = Cli::new();
    let run = cli.run_defaults(&["demo"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    for phrase in [
        "Connected \"Acme on Jamf\" to Jamf: the test call passed",
        "Connected \"Acme on Microsoft Intune\" to Microsoft Intune",
        "Sync refused: a sync started less than 15 minutes ago",
        "1 renamed, 1 detached, 1 members added, 1 removed",
        "FAILED (server_error)",
        "Groups and members after the failure are exactly as before it.",
        "\"Engineering\" → \"Platform Engineering\"",
        "ok: the read models equal a rebuild from the log",
    ] {
        assert!(
            run.stdout.contains(phrase),
            "missing {phrase:?}:\n{}",
            run.stdout
        );
    }
    assert!(!cli.db.exists());
    assert_eq!(std::fs::read_dir(cli.dir.path()).unwrap().count(), 0);

    // With --json and --db: the narration goes to stderr, one document to stdout, db kept.
    let (code, v) = cli.json(&["demo"]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["ok"], true);
    let ws = v["workspaces"].as_array().unwrap();
    assert_eq!(
        ws.iter().map(|w| s(&w["provider"])).collect::<Vec<_>>(),
        vec!["jamf", "intune"]
    );
    for w in ws {
        let groups = groups_by_name(&w["groups"]);
        assert_eq!(groups["Platform Engineering"].0, "synced");
        assert_eq!(groups["All Laptops"].0, "manual");
    }
    assert!(cli.db.exists());
    let listed = cli.ok(&["workspace", "list"], 0);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(cli.ok(&["verify"], 0)["ok"], true);
}

#[test]
fn c2_credentials_need_the_key_file_they_were_saved_with() {
    let secret = format!("e2e-c2-secret-{}", nonce());
    let sim = Sim::start(Provider::Iru, scenario(&secret), false);
    let cli = Cli::new();
    let ws = connected_workspace(&cli, &sim, &secret);
    let other_key = cli.dir.path().join("other.key");
    let other = other_key.display().to_string();
    let (code, v) = cli.json_env(
        &["sync", "--workspace", &ws, "--force"],
        &[("MDMSYNC_KEY_FILE", &other)],
    );
    assert_eq!(code, 1, "{v}");
    assert!(s(&v["error"]).contains("wrong key file"), "{v}");
    assert!(
        other_key.exists(),
        "a missing key file is created on first use"
    );
    // MDMSYNC_KEY (hex) takes precedence over the key file.
    let hex = std::fs::read_to_string(&cli.key_file).unwrap();
    let (code, v) = cli.json_env(
        &["sync", "--workspace", &ws, "--force"],
        &[("MDMSYNC_KEY_FILE", &other), ("MDMSYNC_KEY", hex.trim())],
    );
    assert_eq!(code, 0, "{v}");
    cli.assert_secrets_absent(&[&secret]);
}
