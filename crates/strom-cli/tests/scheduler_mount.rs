//! MOUNT disks on the local engine with real brokers: `strom scheduler run --mount DIR:SIZE`
//! (three disks, one per agent) and `brokers.disk_type: MOUNT`: each broker's volume is one
//! whole disk (two brokers, two different disks, none on the ROOT disk), records produced to a
//! broker land in its disk's directory, and an uninstall empties the disks but leaves them.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::service::*;
use common::{client_runtime, producer, wait_until};
use rdkafka::producer::FutureRecord;

/// The `.log` segment files under `dir`, with their sizes.
fn segments(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "log") {
                found.push((path.clone(), entry.metadata().unwrap().len()));
            }
        }
    }
    found
}

#[test]
fn mount_volumes_take_whole_disks_and_hold_the_brokers_data() {
    let dir = tempfile::tempdir().unwrap();
    let disks: Vec<PathBuf> = (0..3)
        .map(|i| dir.path().join(format!("disk-{i}")))
        .collect();
    for disk in &disks {
        std::fs::create_dir_all(disk).unwrap();
    }
    let options = r#"{"brokers":{"count":2,"cpus":0.1,"mem":256,"disk":150,"disk_type":"MOUNT",
        "kill_grace_period":2}}"#;
    let mut service = Service::new(dir.path(), options);
    service.extra_args = disks
        .iter()
        .flat_map(|d| ["--mount".to_string(), format!("{}:200", d.display())])
        .collect();
    let api = service.start();
    wait_until("the deploy plan completes", Duration::from_secs(60), || {
        http(&api, "GET", "/v1/plans/deploy").0 == 200
    });

    // Each broker's volume is a whole MOUNT disk of its own; no ROOT volume exists.
    let mut roots = Vec::new();
    for pod in ["kafka-0", "kafka-1"] {
        let (status, info) = http(&api, "GET", &format!("/v1/pod/{pod}/info"));
        assert_eq!(status, 200);
        let volume = info[0]["info"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "disk")
            .unwrap()
            .clone();
        assert_eq!(volume["value"]["scalar"], 200.0, "the whole disk: {volume}");
        let root = volume["disk"]["source"]["mount"]["root"]
            .as_str()
            .unwrap_or_else(|| panic!("a MOUNT disk: {volume}"))
            .to_string();
        roots.push(PathBuf::from(root));
    }
    assert_ne!(roots[0], roots[1], "one disk per volume");
    let canonical: Vec<PathBuf> = disks
        .iter()
        .map(|d| std::fs::canonicalize(d).unwrap())
        .collect();
    for root in &roots {
        assert!(canonical.contains(root), "{root:?} is a configured disk");
    }
    let state = dir.path().join("state");
    assert_eq!(
        std::fs::read_dir(state.join("engine/volumes"))
            .unwrap()
            .count(),
        0,
        "nothing on the ROOT disk"
    );

    // Records produced to kafka-0 land in its disk's directory.
    let (_, endpoint) = http(&api, "GET", "/v1/endpoints/broker");
    let kafka_0 = endpoint["address"][0].as_str().unwrap().to_string();
    let producer = producer(&kafka_0, &[("acks", "all")]);
    let runtime = client_runtime();
    for i in 0..20 {
        let value = format!("record-{i}");
        runtime
            .block_on(producer.send(
                FutureRecord::<(), _>::to("on-mount").payload(&value),
                Duration::from_secs(20),
            ))
            .unwrap_or_else(|(e, _)| panic!("produce failed: {e}"));
    }
    let data = roots[0].join("broker-0");
    let deadline = Instant::now() + Duration::from_secs(10);
    let segment = loop {
        let found = segments(&data)
            .into_iter()
            .find(|(path, size)| path.to_string_lossy().contains("on-mount-0") && *size > 0);
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no segment under {data:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes = std::fs::read(&segment.0).unwrap();
    assert!(bytes.windows(9).any(|w| w == b"record-19"), "{segment:?}");

    // Uninstall: the disks stay, emptied.
    service.kill_scheduler();
    service.start_with_env(&[("SDK_UNINSTALL", "1")]);
    let mut child = service.scheduler.take().expect("started");
    let deadline = Instant::now() + Duration::from_secs(60);
    let exit = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the uninstall did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "{exit}");
    for disk in &disks {
        assert!(disk.is_dir());
        assert_eq!(
            std::fs::read_dir(disk).unwrap().count(),
            0,
            "{disk:?} emptied"
        );
    }
}
