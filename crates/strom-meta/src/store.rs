//! Metadata stores: where the [`ClusterMetadata`] lives between broker restarts.
//!
//! This module owns the [`MetadataStore`] trait and the embedded [`FileStore`] used by a single
//! node with no `zookeeper.connect`. It does not own what the model means or how it changes; it
//! only loads and saves whole snapshots. A ZooKeeper store comes later behind the same trait.
//!
//! # On-disk format of the file store
//!
//! One UTF-8 JSON file, `<dir>/strom-metadata.json`:
//!
//! ```json
//! { "format_version": 1,
//!   "metadata": { "cluster_id": "…", "version": 7,
//!                 "topics": { "orders": { "name": "orders", "topic_id": "<uuid>",
//!                   "partitions": 3, "replication_factor": 1, "configs": {}, "internal": false } } } }
//! ```
//!
//! Assumptions about the disk: a `rename` within one directory is atomic, and `fsync` on a file
//! and then on its directory makes the data and the new name durable. A crash can therefore leave
//! the old file, the new file, and possibly a stray `strom-metadata.json.tmp` that is ignored and
//! overwritten by the next save; it never leaves a half-written `strom-metadata.json`. A file
//! that fails to parse is reported as [`MetaError::Corrupt`] and never silently replaced by an
//! empty model, because that would forget every topic.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::ClusterMetadata;

/// The name of the file store's file inside its directory.
pub const METADATA_FILE_NAME: &str = "strom-metadata.json";

/// The version of the file layout [`FileStore`] writes and understands.
pub const METADATA_FORMAT_VERSION: u32 = 1;

/// Failures of a metadata store. Both kinds name the file so an operator can go and look.
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// Reading, writing, syncing or renaming a file failed.
    #[error("metadata store I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation touched.
        path: PathBuf,
        /// The operating-system error.
        #[source]
        source: io::Error,
    },
    /// The file exists but does not hold valid metadata.
    #[error(
        "metadata file {} is corrupt: {message}; refusing to start with an empty cluster model \
         (restore the file from a backup, or move it away to start a new cluster)",
        path.display()
    )]
    Corrupt {
        /// The file that failed to parse.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
}

/// Loads and saves whole snapshots of the cluster model.
pub trait MetadataStore: Send + Sync {
    /// Reads the last saved model, or `None` if nothing was ever saved (a new cluster).
    fn load(&self) -> Result<Option<ClusterMetadata>, MetaError>;
    /// Durably replaces the saved model with `meta`. When this returns `Ok`, a crash will not
    /// lose the change.
    fn save(&self, meta: &ClusterMetadata) -> Result<(), MetaError>;
}

/// The embedded store: one JSON file in the data directory, replaced atomically on every save.
#[derive(Clone, Debug)]
pub struct FileStore {
    /// The directory holding the file; created on the first save.
    dir: PathBuf,
}

/// The file's top level: a format version around the model so the layout can evolve.
#[derive(Serialize, Deserialize)]
struct StoredMetadata {
    format_version: u32,
    metadata: ClusterMetadata,
}

impl FileStore {
    /// A store keeping `<dir>/strom-metadata.json`. Touches no files until used.
    pub fn new(dir: &Path) -> FileStore {
        FileStore {
            dir: dir.to_path_buf(),
        }
    }

    /// The path of the metadata file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(METADATA_FILE_NAME)
    }

    /// The path of the temporary file a save writes before renaming it into place.
    fn temporary_path(&self) -> PathBuf {
        self.dir.join(format!("{METADATA_FILE_NAME}.tmp"))
    }
}

/// Wraps an I/O error with the path it concerns.
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> MetaError + '_ {
    move |source| MetaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl MetadataStore for FileStore {
    fn load(&self) -> Result<Option<ClusterMetadata>, MetaError> {
        let path = self.path();
        let text = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&path)(error)),
        };
        let corrupt = |message: String| MetaError::Corrupt {
            path: path.clone(),
            message,
        };
        let stored: StoredMetadata =
            serde_json::from_slice(&text).map_err(|error| corrupt(error.to_string()))?;
        if stored.format_version != METADATA_FORMAT_VERSION {
            return Err(corrupt(format!(
                "format_version {} is not supported (this Strom reads version {METADATA_FORMAT_VERSION})",
                stored.format_version
            )));
        }
        if let Some((key, topic)) = stored
            .metadata
            .topics
            .iter()
            .find(|(key, topic)| **key != topic.name)
        {
            return Err(corrupt(format!(
                "topic stored under '{key}' is named '{}'",
                topic.name
            )));
        }
        Ok(Some(stored.metadata))
    }

    fn save(&self, meta: &ClusterMetadata) -> Result<(), MetaError> {
        fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let stored = StoredMetadata {
            format_version: METADATA_FORMAT_VERSION,
            metadata: meta.clone(),
        };
        let mut bytes =
            serde_json::to_vec_pretty(&stored).expect("cluster metadata always serializes to JSON");
        bytes.push(b'\n');

        let temporary = self.temporary_path();
        let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
        file.write_all(&bytes).map_err(io_error(&temporary))?;
        file.sync_all().map_err(io_error(&temporary))?;
        drop(file);

        let path = self.path();
        fs::rename(&temporary, &path).map_err(io_error(&path))?;
        sync_directory(&self.dir)?;
        Ok(())
    }
}

/// Makes a rename in `dir` durable by fsyncing the directory itself.
fn sync_directory(dir: &Path) -> Result<(), MetaError> {
    let handle = File::open(dir).map_err(io_error(dir))?;
    handle.sync_all().map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use uuid::Uuid;

    use super::*;
    use crate::model::TopicMetadata;

    fn sample() -> ClusterMetadata {
        let mut topics = BTreeMap::new();
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "1000".to_string());
        topics.insert(
            "orders".to_string(),
            TopicMetadata {
                name: "orders".into(),
                topic_id: Uuid::new_v4(),
                partitions: 3,
                replication_factor: 1,
                configs,
                internal: false,
            },
        );
        ClusterMetadata {
            cluster_id: crate::model::new_cluster_id(),
            topics,
            version: 7,
            broker_configs: [(
                "<default>".to_string(),
                [("log.retention.ms".to_string(), "60000".to_string())].into(),
            )]
            .into(),
        }
    }

    #[test]
    fn empty_directory_loads_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(&dir.path().join("not-yet-created"));
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(&dir.path().join("data"));
        let meta = sample();
        store.save(&meta).unwrap();
        assert_eq!(store.load().unwrap(), Some(meta.clone()));
        // A second store on the same directory (a restart) sees the same model.
        assert_eq!(
            FileStore::new(&dir.path().join("data")).load().unwrap(),
            Some(meta)
        );
    }

    #[test]
    fn save_replaces_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let mut meta = sample();
        store.save(&meta).unwrap();
        meta.version += 1;
        meta.topics.clear();
        store.save(&meta).unwrap();
        assert_eq!(store.load().unwrap(), Some(meta));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![METADATA_FILE_NAME.to_string()]);
    }

    #[test]
    fn stray_temporary_file_is_ignored_and_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let meta = sample();
        store.save(&meta).unwrap();
        // A crash in the middle of the next save leaves a torn temporary file.
        fs::write(store.temporary_path(), b"{\"format_version\": 1, \"meta").unwrap();
        assert_eq!(store.load().unwrap(), Some(meta.clone()));
        store.save(&meta).unwrap();
        assert!(!store.temporary_path().exists());
    }

    #[test]
    fn corrupt_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        fs::write(store.path(), b"{ not json").unwrap();
        let error = store.load().unwrap_err();
        assert!(matches!(error, MetaError::Corrupt { .. }));
        let text = error.to_string();
        assert!(text.contains(&store.path().display().to_string()), "{text}");
        assert!(text.contains("corrupt"), "{text}");
        // The corrupt file is left alone for the operator to inspect.
        assert_eq!(fs::read(store.path()).unwrap(), b"{ not json");
    }

    #[test]
    fn unknown_format_version_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        fs::write(
            store.path(),
            br#"{"format_version": 99, "metadata": {"cluster_id": "x", "topics": {}, "version": 1}}"#,
        )
        .unwrap();
        let text = store.load().unwrap_err().to_string();
        assert!(text.contains("format_version 99"), "{text}");
    }

    #[test]
    fn mismatched_topic_key_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path());
        let mut meta = sample();
        let topic = meta.topics.remove("orders").unwrap();
        meta.topics.insert("other".into(), topic);
        store.save(&meta).unwrap();
        let text = store.load().unwrap_err().to_string();
        assert!(text.contains("'other'"), "{text}");
    }

    #[test]
    fn unreadable_path_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        // The "directory" is a regular file, so creating the store's directory fails.
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"").unwrap();
        let store = FileStore::new(&blocker.join("sub"));
        let error = store.save(&sample()).unwrap_err();
        assert!(matches!(error, MetaError::Io { .. }), "{error}");
        assert!(error.to_string().contains("file"), "{error}");
    }
}
