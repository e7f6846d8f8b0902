//! Secrets end to end: `strom service secret create|list|delete` fills the file secret store,
//! `strom scheduler run --secret-store` deploys a real broker whose process has the env secret
//! and whose sandbox has the decoded base64 file (mode 0400); no API answer, scheduler log,
//! state-store node, engine ledger or task log holds a value; an update naming a secret of
//! another namespace is refused with 417 and the rule.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::service::*;
use common::wait_until;

const PASSWORD: &str = "pw-Strom-9f3a7c1e";
const KEYTAB_BASE64: &str = "S0VZVEFCLWJ5dGVzLTQyAP8=";
const KEYTAB: &[u8] = b"KEYTAB-bytes-42\x00\xff";

fn secret_cli(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["service", "secret", "--store"])
        .arg(store)
        .args(args)
        .output()
        .expect("strom runs")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn all_files(dir: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if skip.contains(&name.as_str()) {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            all_files(&entry.path(), skip, out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

#[test]
fn secrets_reach_a_real_broker_and_never_the_api_logs_or_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("secret-store");
    let created = secret_cli(&store, &["create", "kafka/sasl", "--value", PASSWORD]);
    assert!(created.status.success(), "{created:?}");
    assert!(!contains(&created.stdout, PASSWORD.as_bytes()));
    let keytab_file = dir.path().join("keytab.b64");
    std::fs::write(&keytab_file, KEYTAB_BASE64).unwrap();
    let keytab_arg = keytab_file.to_str().unwrap();
    let created = secret_cli(
        &store,
        &["create", "__dcos_base64__keytab", "--file", keytab_arg],
    );
    assert!(created.status.success(), "{created:?}");
    let again = secret_cli(&store, &["create", "kafka/sasl", "--value", "other"]);
    assert!(!again.status.success(), "an existing secret needs --force");
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let listed = secret_cli(&store, &["list"]);
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout)
            .lines()
            .skip(1)
            .map(str::trim)
            .collect::<Vec<_>>(),
        ["__dcos_base64__keytab", "kafka/sasl"],
        "{listed:?}"
    );

    let options = r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2,
        "secrets":{"sasl":{"secret":"kafka/sasl","env_key":"SASL_PASSWORD"},
                   "keytab":{"secret":"__dcos_base64__keytab","file":"kafka.keytab"}}}}"#;
    let mut service = Service::new(dir.path(), options);
    service.die_with_scheduler = true;
    service.extra_args = vec!["--secret-store".into(), store.display().to_string()];
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });

    // The broker (a real `strom broker`) has the env secret and the decoded file.
    let pid = service.pid("kafka-0-broker").expect("the broker runs");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(contains(
        &environ,
        format!("SASL_PASSWORD={PASSWORD}\0").as_bytes()
    ));
    let sandbox = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    let keytab = sandbox.join("kafka.keytab");
    assert_eq!(std::fs::read(&keytab).unwrap(), KEYTAB);
    let mode = std::fs::metadata(&keytab).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);

    // Nothing the API answers holds a value; the task info shows the references.
    let (status, info) = http(&api, "GET", "/v1/pod/kafka-0/info");
    assert_eq!(status, 200);
    // Entries in the options' (sorted) order: keytab, sasl.
    let secrets = &info[0]["info"]["secrets"];
    assert_eq!(secrets[0]["secret"], "__dcos_base64__keytab", "{info}");
    assert_eq!(secrets[0]["file"], "kafka.keytab", "{info}");
    assert_eq!(secrets[1]["secret"], "kafka/sasl", "{info}");
    assert_eq!(secrets[1]["env-key"], "SASL_PASSWORD", "{info}");
    let mut answers = String::new();
    for path in [
        "/v1/pod/kafka-0/info",
        "/v1/pod/status",
        "/v1/plans/deploy",
        "/v1/configurations/target",
        "/v1/state/properties/target-options",
        "/v1/endpoints/broker",
        "/v1/debug/offers",
        "/v1/metrics",
    ] {
        let (status, head, body) = http_text(&api, path);
        assert_eq!(status, 200, "{path}: {head}");
        answers.push_str(&body);
    }
    assert!(answers.contains("kafka/sasl"));
    for needle in [PASSWORD, KEYTAB_BASE64] {
        assert!(!answers.contains(needle), "an API answer holds a secret");
    }

    // An update reading another namespace's secret is refused, with the rule.
    let sibling = r#"{"brokers":{"count":1,"cpus":0.1,"mem":256,"disk":100,"kill_grace_period":2,
        "secrets":{"sasl":{"secret":"other/sasl","env_key":"SASL_PASSWORD"}}}}"#;
    let (status, body) = http_request(&api, "POST", "/v1/update", "", sibling);
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("may not read secret"), "{body}");

    // The state store, the engine ledger, the broker's own logs, the check logs and the
    // scheduler's log hold no value (only the delivered file and the store do).
    let mut files = Vec::new();
    all_files(
        dir.path(),
        &["secret-store", "kafka.keytab", "keytab.b64"],
        &mut files,
    );
    assert!(files.iter().any(|f| f.ends_with("scheduler.log")));
    assert!(files.iter().any(|f| f.ends_with("TaskInfo")));
    assert!(files.iter().any(|f| f.ends_with("readiness.log")));
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in [PASSWORD.as_bytes(), KEYTAB_BASE64.as_bytes(), KEYTAB] {
            assert!(
                !contains(&bytes, needle),
                "{} holds a secret",
                file.display()
            );
        }
    }

    let deleted = secret_cli(&store, &["delete", "kafka/sasl"]);
    assert!(deleted.status.success(), "{deleted:?}");
    let listed = secret_cli(&store, &["list", "kafka"]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains("kafka/sasl"));
}
