//! The `strom` binary as a user runs it: refused configuration, SIGTERM and restart, and the
//! client commands (topic, produce, consume, cluster) against a running broker.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn strom() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strom"))
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = strom()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok(args: &[&str], stdin: Option<&str>) -> String {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "strom {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn invalid_configuration_is_refused_before_the_broker_starts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_set = format!("log.dirs={}", data.display());
    let out = run(
        &[
            "broker",
            "--set",
            &data_set,
            "--set",
            "log.retention.ms=soon",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("log.retention.ms") && err.contains("soon"),
        "names the key and value: {err}"
    );
    assert!(!data.exists(), "nothing was created before the refusal");

    let out = run(
        &["broker", "--set", &data_set, "--set", "num.partitons=3"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("num.partitons") && err.contains("num.partitions"),
        "suggests the known key: {err}"
    );

    let file = dir.path().join("server.properties");
    std::fs::write(&file, "broker.id=1\nnum.partitions=zero\n").unwrap();
    let out = run(
        &[
            "broker",
            "--config",
            file.to_str().unwrap(),
            "--set",
            &data_set,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("num.partitions"));
}

/// The "logs loaded" line of a broker that has started (so the line is written).
fn logs_loaded_line(broker: &BrokerProcess) -> String {
    broker
        .log_line("logs loaded")
        .expect("a started broker has logged 'logs loaded'")
}

#[test]
fn sigterm_shuts_down_cleanly_and_the_restart_reads_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut broker = spawn_broker_process(&data, &dir.path().join("first.log"), &[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "term", 2, &[]);
    let lines: String = (0..2000).map(|i| format!("record-{i}\n")).collect();
    ok(
        &["-b", &bootstrap, "produce", "term", "--acks", "all"],
        Some(&lines),
    );

    unsafe { libc::kill(broker.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = broker.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the broker did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "clean exit after SIGTERM: {status:?}");
    assert!(
        data.join(".kafka_cleanshutdown").exists(),
        "the clean-shutdown marker is written"
    );
    assert!(data.join("recovery-point-offset-checkpoint").exists());

    let mut broker = spawn_broker_process(&data, &dir.path().join("second.log"), &[]);
    let bootstrap = broker.bootstrap();
    let line = logs_loaded_line(&broker);
    assert!(
        line.contains("bytes_reread=0"),
        "after a clean stop nothing is re-read: {line}"
    );
    let out = ok(
        &[
            "-b",
            &bootstrap,
            "consume",
            "term",
            "--from",
            "beginning",
            "--exit-at-end",
            "-f",
            "%v\\n",
        ],
        None,
    );
    assert_eq!(out.lines().count(), 2000);
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();

    // After SIGKILL, the restart re-reads (at least) the unflushed tail.
    let mut broker = spawn_broker_process(&data, &dir.path().join("third.log"), &[]);
    let bootstrap = broker.bootstrap();
    assert!(
        !data.join(".kafka_cleanshutdown").exists(),
        "the marker is removed at startup"
    );
    let line = logs_loaded_line(&broker);
    assert!(
        line.contains("segments_recovered=") && !line.contains("segments_recovered=0"),
        "a kill -9 leads to recovery: {line}"
    );
    let out = ok(
        &[
            "-b",
            &bootstrap,
            "consume",
            "term",
            "--from",
            "beginning",
            "--exit-at-end",
            "-f",
            "%v\\n",
        ],
        None,
    );
    assert_eq!(
        out.lines().count(),
        2000,
        "everything is still there after recovery"
    );
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}

#[test]
fn client_commands_against_a_broker() {
    let broker = TestBroker::start(&["broker.rack=rack-a"]);
    let b = broker.bootstrap();
    ok(
        &[
            "-b",
            &b,
            "topic",
            "create",
            "tour",
            "-p",
            "3",
            "-c",
            "retention.ms=86400000",
        ],
        None,
    );
    let listed = ok(&["-b", &b, "topic", "list"], None);
    assert!(listed.contains("tour") && listed.contains('3'), "{listed}");
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&["-b", &b, "--json", "topic", "list"], None)).unwrap();
    assert!(listed.to_string().contains("\"tour\""), "{listed}");

    let produced = run(
        &[
            "-b",
            &b,
            "produce",
            "tour",
            "-k",
            ":",
            "-H",
            "source=cli",
            "-p",
            "1",
        ],
        Some("k1:hello\nk2:world\n"),
    );
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let consumed = ok(
        &[
            "-b",
            &b,
            "consume",
            "tour",
            "-p",
            "1",
            "--from",
            "beginning",
            "--exit-at-end",
            "-f",
            "%p/%o %k=%v %h\\n",
        ],
        None,
    );
    assert_eq!(
        consumed,
        "1/0 k1=hello source=cli\n1/1 k2=world source=cli\n"
    );
    let json = ok(
        &[
            "-b", &b, "--json", "consume", "tour", "-p", "1", "--from", "1", "-n", "1",
        ],
        None,
    );
    let record: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(record["offset"], 1);
    assert_eq!(record["value"], "world");

    let described = ok(&["-b", &b, "topic", "describe", "tour"], None);
    assert!(
        described.contains("retention.ms") && described.contains("86400000"),
        "{described}"
    );
    ok(
        &[
            "-b",
            &b,
            "topic",
            "alter-config",
            "tour",
            "--set",
            "segment.ms=600000",
            "--delete",
            "retention.ms",
        ],
        None,
    );
    let described = ok(&["-b", &b, "topic", "describe", "tour"], None);
    assert!(
        described.contains("segment.ms") && !described.contains("86400000"),
        "{described}"
    );

    let info = ok(&["-b", &b, "cluster", "info"], None);
    assert!(
        info.contains(&broker.handle.as_ref().unwrap().addr().port().to_string()),
        "{info}"
    );
    assert!(
        info.contains("rack-a") && info.contains("UNDER-REPLICATED  0"),
        "{info}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["-b", &b, "--json", "cluster", "info"], None)).unwrap();
    assert_eq!(json["brokers"][0]["rack"], "rack-a", "{json}");
    assert_eq!(json["controller_id"], json["brokers"][0]["id"], "{json}");
    // The "tour" topic's partitions, all led by the one broker.
    let partitions = json["partitions"].as_u64().unwrap();
    assert!(partitions >= 1, "{json}");
    assert_eq!(
        json["brokers"][0]["leaders"].as_u64(),
        Some(partitions),
        "{json}"
    );
    assert_eq!(json["offline"].as_array().map(Vec::len), Some(0), "{json}");

    ok(&["-b", &b, "topic", "delete", "tour"], None);
    let listed = ok(&["-b", &b, "topic", "list"], None);
    assert!(!listed.contains("tour"), "{listed}");
    let missing = run(&["-b", &b, "topic", "describe", "tour"], None);
    assert!(
        !missing.status.success(),
        "describing a deleted topic fails"
    );
}

#[test]
fn group_commands_list_describe_reset_and_delete() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let b = broker.bootstrap();
    ok(&["-b", &b, "topic", "create", "gt", "-p", "2"], None);
    let lines: String = (0..10).map(|i| format!("r{i}\n")).collect();
    ok(&["-b", &b, "produce", "gt", "-p", "0"], Some(&lines));
    ok(&["-b", &b, "produce", "gt", "-p", "1"], Some(&lines));
    // A group consumer reads six records and commits what it printed.
    let printed = ok(
        &[
            "-b",
            &b,
            "consume",
            "gt",
            "--group",
            "cli-g",
            "-n",
            "6",
            "--from",
            "beginning",
        ],
        None,
    );
    assert_eq!(printed.lines().count(), 6);
    // A group consumer with --exit-at-end stops once its assigned partitions are read.
    let everything = ok(
        &[
            "-b",
            &b,
            "consume",
            "gt",
            "--group",
            "cli-whole",
            "--from",
            "beginning",
            "--exit-at-end",
        ],
        None,
    );
    assert_eq!(everything.lines().count(), 20);

    let listed = ok(&["-b", &b, "group", "list"], None);
    assert!(
        listed.contains("cli-g") && listed.contains("Empty"),
        "{listed}"
    );
    let described = ok(&["-b", &b, "group", "describe", "cli-g"], None);
    for column in [
        "GROUP",
        "TOPIC",
        "PARTITION",
        "CURRENT-OFFSET",
        "LOG-END-OFFSET",
        "LAG",
        "CONSUMER-ID",
        "HOST",
        "CLIENT-ID",
    ] {
        assert!(
            described.contains(column),
            "describe prints {column}: {described}"
        );
    }
    let json: serde_json::Value = serde_json::from_str(&ok(
        &["-b", &b, "--json", "group", "describe", "cli-g"],
        None,
    ))
    .unwrap();
    let rows = json["rows"].as_array().unwrap();
    let committed: i64 = rows
        .iter()
        .map(|r| r["current_offset"].as_i64().unwrap_or(0))
        .sum();
    let lag: i64 = rows.iter().map(|r| r["lag"].as_i64().unwrap_or(0)).sum();
    // Rows are the partitions with a commit; each has ten records.
    assert_eq!(committed, 6, "six records were committed: {json}");
    assert_eq!(
        lag,
        10 * rows.len() as i64 - 6,
        "lag = log end - committed: {json}"
    );

    // Dry run by default: nothing changes.
    let dry = ok(
        &[
            "-b",
            &b,
            "group",
            "reset-offsets",
            "cli-g",
            "--topic",
            "gt",
            "--to-earliest",
        ],
        None,
    );
    assert!(dry.contains("NEW-OFFSET"), "{dry}");
    let still: i64 = described_offsets(&b, "cli-g").iter().flatten().sum();
    assert_eq!(still, 6, "a dry run commits nothing");
    ok(
        &[
            "-b",
            &b,
            "group",
            "reset-offsets",
            "cli-g",
            "--topic",
            "gt",
            "--to-offset",
            "8",
            "--execute",
        ],
        None,
    );
    assert_eq!(described_offsets(&b, "cli-g"), vec![Some(8), Some(8)]);
    ok(
        &[
            "-b",
            &b,
            "group",
            "reset-offsets",
            "cli-g",
            "--topic",
            "gt",
            "--shift-by",
            "-3",
            "--execute",
        ],
        None,
    );
    assert_eq!(described_offsets(&b, "cli-g"), vec![Some(5), Some(5)]);
    // A time after every record: the log end; one hour back: every record is newer, so the
    // first offset.
    for (flag, value, expected) in [
        ("--to-datetime", "2099-01-01T00:00:00+01:00", 10),
        ("--by-duration", "PT1H", 0),
    ] {
        ok(
            &[
                "-b",
                &b,
                "group",
                "reset-offsets",
                "cli-g",
                "--topic",
                "gt",
                flag,
                value,
                "--execute",
            ],
            None,
        );
        let expected = Some(expected);
        assert_eq!(
            described_offsets(&b, "cli-g"),
            vec![expected, expected],
            "{flag}"
        );
    }

    ok(&["-b", &b, "group", "delete", "cli-g"], None);
    let listed = ok(&["-b", &b, "group", "list"], None);
    assert!(!listed.contains("cli-g"), "{listed}");
    assert!(!run(&["-b", &b, "group", "describe", "cli-g"], None)
        .status
        .success());
}

/// The CURRENT-OFFSET column of `strom group describe --json` (None where nothing is committed).
fn described_offsets(bootstrap: &str, group: &str) -> Vec<Option<i64>> {
    let json: serde_json::Value = serde_json::from_str(&ok(
        &["-b", bootstrap, "--json", "group", "describe", group],
        None,
    ))
    .unwrap();
    json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["current_offset"].as_i64())
        .collect()
}
