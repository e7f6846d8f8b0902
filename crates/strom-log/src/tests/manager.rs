//! The log manager: identity, checkpoints, clean-shutdown marker, placement, deletion.

use std::path::PathBuf;

use super::{batch, small_config};
use crate::manager::CLEAN_SHUTDOWN_MARKER;
use crate::{LogConfig, LogError, LogManager, TopicPartition};

fn config(_: &str) -> LogConfig {
    small_config()
}

fn open(dirs: &[PathBuf]) -> Result<LogManager, LogError> {
    LogManager::open(dirs, 1, "cluster-a", 2, &config, &|_| true, 0)
}

fn fill(manager: &LogManager, tp: &TopicPartition, n: usize) {
    let log = manager.get_or_create(tp, small_config(), 0).unwrap();
    let mut log = log.lock().unwrap();
    for i in 0..n {
        log.append(batch(2, 50, i as u8, 0), 0, 0).unwrap();
    }
    let end = log.log_end_offset();
    log.set_high_watermark(end);
}

#[test]
fn meta_properties_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = open(&dirs).unwrap();
    assert_eq!(manager.cluster_id(), "cluster-a");
    drop(manager);
    let text = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
    assert!(
        text.contains("version=1")
            && text.contains("broker.id=1")
            && text.contains("cluster.id=cluster-a")
    );
    let err = LogManager::open(&dirs, 2, "cluster-a", 1, &config, &|_| true, 0)
        .err()
        .unwrap();
    assert!(err.to_string().contains("broker.id is 1"), "{err}");
    let err = LogManager::open(&dirs, 1, "cluster-b", 1, &config, &|_| true, 0)
        .err()
        .unwrap();
    assert!(matches!(
        err,
        LogError::MetaPropertiesMismatch {
            key: "cluster.id",
            ..
        }
    ));
    let manager = LogManager::open(&dirs, 1, "", 1, &config, &|_| true, 0).unwrap();
    assert_eq!(manager.cluster_id(), "cluster-a");
}

#[test]
fn checkpoints_and_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = open(&dirs).unwrap();
    let a = TopicPartition::new("orders-eu", 0);
    let b = TopicPartition::new("orders-eu", 1);
    fill(&manager, &a, 30);
    fill(&manager, &b, 3);
    manager
        .get(&a)
        .unwrap()
        .lock()
        .unwrap()
        .delete_records_before(4)
        .unwrap();
    manager.shutdown().unwrap();
    assert!(dir.path().join(CLEAN_SHUTDOWN_MARKER).exists());
    drop(manager);

    let manager = open(&dirs).unwrap();
    assert!(
        !dir.path().join(CLEAN_SHUTDOWN_MARKER).exists(),
        "marker consumed"
    );
    assert_eq!(
        manager.recovery_stats().bytes_reread,
        0,
        "clean shutdown skips recovery"
    );
    assert_eq!(manager.all().len(), 2);
    let log = manager.get(&a).unwrap();
    assert_eq!(log.lock().unwrap().log_start_offset(), 4);
    assert_eq!(log.lock().unwrap().log_end_offset(), 60);
    assert_eq!(manager.checkpointed_high_watermark(&a), Some(60));
    assert_eq!(manager.get(&b).unwrap().lock().unwrap().log_end_offset(), 6);
    let checkpoint =
        std::fs::read_to_string(dir.path().join("recovery-point-offset-checkpoint")).unwrap();
    assert_eq!(checkpoint, "0\n2\norders-eu 0 60\norders-eu 1 6\n");
    // Crash: no shutdown. The next open re-reads what the checkpoint does not cover.
    fill(&manager, &a, 5);
    manager.checkpoint().unwrap();
    drop(log);
    drop(manager);
    let manager = open(&dirs).unwrap();
    let stats = manager.recovery_stats();
    assert!(stats.bytes_reread > 0, "{stats:?}");
    assert_eq!(
        manager.get(&a).unwrap().lock().unwrap().log_end_offset(),
        70
    );
}

#[test]
fn placement_delete_and_leftovers() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let dirs = vec![one.path().to_path_buf(), two.path().to_path_buf()];
    std::fs::create_dir(one.path().join("old-0.abc-delete")).unwrap();
    let manager = open(&dirs).unwrap();
    assert!(!one.path().join("old-0.abc-delete").exists());
    for p in 0..4 {
        fill(&manager, &TopicPartition::new("t", p), 1);
    }
    let in_one = std::fs::read_dir(one.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_dir())
        .count();
    assert_eq!(in_one, 2, "partitions spread over the log dirs");
    // Each log is reported with the log dir its directory is in.
    let by_dir = manager.all_by_dir();
    assert_eq!(by_dir.len(), 4);
    for (index, tp, log) in &by_dir {
        let parent = log.lock().unwrap().dir().parent().unwrap().to_path_buf();
        assert_eq!(parent, dirs[*index], "{tp}");
    }
    assert_eq!(by_dir.iter().filter(|(i, _, _)| *i == 0).count(), 2);
    let tp = TopicPartition::new("t", 0);
    let path = manager
        .get(&tp)
        .unwrap()
        .lock()
        .unwrap()
        .dir()
        .to_path_buf();
    manager.delete(&tp).unwrap();
    assert!(!path.exists());
    assert!(manager.get(&tp).is_none());
    assert_eq!(manager.retention_pass(0).unwrap(), 0);
    manager.flush_due(0).unwrap();
    manager.shutdown().unwrap();
    drop(manager);
    let manager = open(&dirs).unwrap();
    assert_eq!(manager.all().len(), 3);
}

#[test]
fn the_cleaner_checkpoint_keeps_how_far_compacted_logs_are_cleaned() {
    use bytes::Bytes;

    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let compacted = |_: &str| LogConfig {
        compact: true,
        min_cleanable_dirty_ratio: 0.0,
        ..small_config()
    };
    let manager = LogManager::open(&dirs, 1, "cluster-a", 1, &compacted, &|_| true, 0).unwrap();
    let tp = TopicPartition::new("table", 0);
    let log = manager.get_or_create(&tp, compacted("table"), 0).unwrap();
    {
        let mut log = log.lock().unwrap();
        for i in 0..60u32 {
            let key = format!("k{}", i % 4);
            let value = vec![b'v'; 40];
            let batch = crate::records::encode_batch(&[(Some(key.as_bytes()), Some(&value))], 0);
            log.append(Bytes::from(batch), 0, 0).unwrap();
        }
        log.flush().unwrap();
        let end = log.log_end_offset();
        log.set_high_watermark(end);
    }
    let stats = manager.compaction_pass(10).unwrap();
    assert!(stats.segments_cleaned > 0);
    let cleaned = log.lock().unwrap().cleaned_up_to();
    assert!(cleaned > 0);
    manager.shutdown().unwrap();
    drop(log);
    drop(manager);
    let text = std::fs::read_to_string(dir.path().join("cleaner-offset-checkpoint")).unwrap();
    assert!(text.contains(&format!("table 0 {cleaned}")), "{text}");

    let manager = LogManager::open(&dirs, 1, "cluster-a", 1, &compacted, &|_| true, 0).unwrap();
    let log = manager.get(&tp).unwrap();
    assert_eq!(log.lock().unwrap().cleaned_up_to(), cleaned);
    // Nothing new was written, so the restart has nothing to clean.
    assert_eq!(manager.compaction_pass(20).unwrap().segments_cleaned, 0);
}

#[test]
fn unknown_directories_are_quarantined_and_unopenable_ones_stay_offline() {
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = open(&dirs).unwrap();
    let known = TopicPartition::new("known", 0);
    let gone = TopicPartition::new("gone", 0);
    let empty = TopicPartition::new("empty", 0);
    fill(&manager, &known, 3);
    fill(&manager, &gone, 3);
    manager.get_or_create(&empty, small_config(), 0).unwrap();
    manager.shutdown().unwrap();
    drop(manager);
    // A partition whose segment cannot be opened (a directory where its .log file should be).
    let broken = TopicPartition::new("broken", 0);
    std::fs::create_dir_all(dir.path().join("broken-0").join("00000000000000000000.log")).unwrap();
    let checkpoint = dir.path().join("recovery-point-offset-checkpoint");
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    std::fs::write(&checkpoint, text.replace("0\n3\n", "0\n4\nbroken 0 17\n")).unwrap();

    let is_known = |tp: &TopicPartition| tp.topic == "known" || tp.topic == "broken";
    let manager = LogManager::open(&dirs, 1, "cluster-a", 2, &config, &is_known, 0).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let strays: Vec<&String> = names.iter().filter(|n| n.ends_with("-stray")).collect();
    assert_eq!(strays.len(), 1, "{names:?}");
    assert!(strays[0].starts_with("gone-0."), "{names:?}");
    assert!(
        std::fs::metadata(dir.path().join(strays[0]).join("00000000000000000000.log"))
            .unwrap()
            .len()
            > 0,
        "the stray keeps its records"
    );
    assert!(!dir.path().join("gone-0").exists());
    assert!(
        !dir.path().join("empty-0").exists(),
        "an empty stray is removed"
    );
    assert_eq!(
        manager
            .all()
            .into_iter()
            .map(|(tp, _)| tp)
            .collect::<Vec<_>>(),
        vec![known.clone()]
    );
    let offline = manager.offline();
    assert_eq!(offline.keys().collect::<Vec<_>>(), vec![&broken]);
    assert!(manager.is_offline(&broken));
    assert!(manager.create(&broken, small_config(), 0).is_err());
    // The offline partition keeps its checkpoint entry, and without a clean close of every
    // partition there is no clean-shutdown marker.
    manager.shutdown().unwrap();
    let text = std::fs::read_to_string(&checkpoint).unwrap();
    assert!(text.contains("broken 0 17"), "{text}");
    assert!(!dir.path().join(CLEAN_SHUTDOWN_MARKER).exists());
    manager.delete(&broken).unwrap();
    assert!(!dir.path().join("broken-0").exists());
    drop(manager);
    // The quarantined directory is left alone at the next start.
    let manager = LogManager::open(&dirs, 1, "cluster-a", 2, &config, &is_known, 0).unwrap();
    assert!(dir.path().join(strays[0]).exists());
    assert_eq!(manager.all().len(), 1);
    assert!(manager.offline().is_empty());
}

/// A checkpoint file whose contents would not change is not rewritten (each rewrite is a new
/// file renamed into place, so its inode tells); one whose contents change is, and the other
/// files of the same checkpoint are left alone.
#[test]
fn unchanged_checkpoint_files_are_not_rewritten() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let dirs = vec![dir.path().to_path_buf()];
    let manager = open(&dirs).unwrap();
    let tp = TopicPartition::new("t", 0);
    fill(&manager, &tp, 3);
    manager.checkpoint().unwrap();
    let inode = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().ino();
    let hw = inode(crate::manager::REPLICATION_CHECKPOINT);
    let start = inode(crate::manager::LOG_START_OFFSET_CHECKPOINT);
    manager.checkpoint().unwrap();
    assert_eq!(inode(crate::manager::REPLICATION_CHECKPOINT), hw);
    assert_eq!(inode(crate::manager::LOG_START_OFFSET_CHECKPOINT), start);
    fill(&manager, &tp, 2);
    manager.checkpoint().unwrap();
    assert_ne!(inode(crate::manager::REPLICATION_CHECKPOINT), hw);
    assert_eq!(inode(crate::manager::LOG_START_OFFSET_CHECKPOINT), start);
    let text =
        std::fs::read_to_string(dir.path().join(crate::manager::REPLICATION_CHECKPOINT)).unwrap();
    assert!(text.ends_with("t 0 10\n"), "{text}");
}
