//! kcat (Debian's librdkafka build, an older client than the rdkafka crate's) against Strom:
//! metadata, produce with keys, consume back, and interplay with the rdkafka crate.
//! `./scripts/test` installs kcat; run without it, this test fails and says so.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn kcat() -> Command {
    let found = Command::new("kcat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(found, Ok(s) if s.success()),
        "kcat is not installed: ./scripts/test installs it (apt-get install kcat)"
    );
    Command::new("kcat")
}

#[test]
fn kcat_round_trip() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "kc", 2, &[]);

    let listing = kcat()
        .args(["-b", &bootstrap, "-L", "-t", "kc"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "kcat -L failed: {}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert!(
        text.contains("topic \"kc\" with 2 partitions"),
        "kcat -L output: {text}"
    );

    let lines: Vec<String> = (0..200)
        .map(|i| format!("key{i}:value-{i}-{}", "x".repeat(i % 50)))
        .collect();
    kcat(); // checks that kcat is installed
    kcat_produce(
        &[
            "-b", &bootstrap, "-t", "kc", "-K:", "-z", "lz4", "-X", "acks=all",
        ],
        &lines,
    );

    let consumed = kcat()
        .args([
            "-b",
            &bootstrap,
            "-C",
            "-t",
            "kc",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k:%s\n",
        ])
        .output()
        .unwrap();
    assert!(
        consumed.status.success(),
        "kcat -C failed: {}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    let mut got: Vec<String> = String::from_utf8_lossy(&consumed.stdout)
        .lines()
        .map(String::from)
        .collect();
    let mut expected = lines.clone();
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "kcat reads back exactly what kcat wrote");

    // What kcat wrote, the rdkafka crate reads, with the same keys and values.
    let records = consume(
        &bootstrap,
        "kc",
        &[0, 1],
        lines.len(),
        Duration::from_secs(20),
    );
    let mut via_crate: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "{}:{}",
                String::from_utf8_lossy(r.key.as_deref().unwrap()),
                String::from_utf8_lossy(r.value.as_deref().unwrap())
            )
        })
        .collect();
    via_crate.sort();
    assert_eq!(via_crate, expected);
}
