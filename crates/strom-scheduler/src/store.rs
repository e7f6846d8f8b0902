//! The state store's storage abstraction, [`Persister`], and the in-memory [`MemPersister`].
//!
//! Paths are relative to the service's root and use the SDK's node names (`FrameworkID`,
//! `ConfigTarget`, `Configurations/<uuid>`, `Tasks/<task>/TaskInfo`, `Tasks/<task>/TaskStatus`,
//! `Properties/<key>`, `SchemaVersion`, `lock`); the ZooKeeper persister (`zk_store.rs`) roots
//! them at [`service_root`], the file persister in the state directory. This module owns the
//! trait and the memory implementation used by tests and simulations; it owns no schema.

use std::collections::BTreeMap;

/// Why the store failed. Operating failures, not programming errors.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StoreError {
    /// The backing storage failed (I/O, session loss).
    #[error("state store: {0}")]
    Io(String),
    /// A node holds bytes that do not decode.
    #[error("state store: {path} is corrupt: {reason}")]
    Corrupt { path: String, reason: String },
}

/// Key-value storage of byte values under `/`-separated paths, like ZooKeeper nodes.
///
/// Invariant (for every implementation): [`Persister::apply`] is atomic — after a crash either
/// all of its writes are visible or none is.
pub trait Persister {
    /// The value at `path`, or `None` when there is none.
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// The names of the direct children of `path` (`""` is the root), sorted.
    fn children(&self, path: &str) -> Result<Vec<String>, StoreError>;

    /// Applies writes atomically: `Some(bytes)` sets a value, `None` deletes the path and
    /// everything below it.
    fn apply(&mut self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<(), StoreError>;

    /// Sets one value.
    fn set(&mut self, path: &str, value: Vec<u8>) -> Result<(), StoreError> {
        self.apply(vec![(path.to_string(), Some(value))])
    }

    /// Deletes `path` and everything below it.
    fn delete(&mut self, path: &str) -> Result<(), StoreError> {
        self.apply(vec![(path.to_string(), None)])
    }

    /// Releases the store's lock now, for a process about to exit (the ZooKeeper store
    /// deletes its lock node instead of leaving it until its session expires). Every later
    /// call fails. The default does nothing.
    fn close(&self) {}
}

/// A boxed store is a store, so the binary can pick one at run time.
impl<P: Persister + ?Sized> Persister for Box<P> {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        (**self).get(path)
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StoreError> {
        (**self).children(path)
    }

    fn apply(&mut self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        (**self).apply(writes)
    }

    fn close(&self) {
        (**self).close()
    }
}

/// The ZooKeeper root of service `name`: `/dcos-service-<name>` with `/` in the name as `__`.
pub fn service_root(name: &str) -> String {
    format!(
        "/dcos-service-{}",
        name.trim_start_matches('/').replace('/', "__")
    )
}

/// A [`Persister`] in memory, for tests, simulations and the scenario suite.
#[derive(Clone, Debug, Default)]
pub struct MemPersister {
    values: BTreeMap<String, Vec<u8>>,
    /// When set, the next `apply` fails with this message (to test refused writes).
    fail_next_apply: Option<String>,
}

impl MemPersister {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `apply` fail without writing anything.
    pub fn fail_next_apply(&mut self, message: &str) {
        self.fail_next_apply = Some(message.to_string());
    }

    /// Every path that holds a value, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.values.keys().cloned().collect()
    }
}

fn below(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || (path.starts_with(prefix) && path.as_bytes().get(prefix.len()) == Some(&b'/'))
}

impl Persister for MemPersister {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.values.get(path).cloned())
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StoreError> {
        let prefix = if path.is_empty() {
            String::new()
        } else {
            format!("{path}/")
        };
        let mut names: Vec<String> = self
            .values
            .keys()
            .filter_map(|key| key.strip_prefix(&prefix))
            .filter_map(|rest| rest.split('/').next())
            .map(str::to_string)
            .collect();
        names.dedup();
        Ok(names)
    }

    fn apply(&mut self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        if let Some(message) = self.fail_next_apply.take() {
            return Err(StoreError::Io(message));
        }
        for (path, value) in writes {
            match value {
                Some(bytes) => {
                    self.values.insert(path, bytes);
                }
                None => self.values.retain(|key, _| !below(key, &path)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_and_recursive_delete() {
        let mut store = MemPersister::new();
        store
            .apply(vec![
                ("Tasks/kafka-0-broker/TaskInfo".into(), Some(b"a".to_vec())),
                (
                    "Tasks/kafka-0-broker/TaskStatus".into(),
                    Some(b"b".to_vec()),
                ),
                ("Tasks/kafka-1-broker/TaskInfo".into(), Some(b"c".to_vec())),
                ("Tasks2".into(), Some(b"d".to_vec())),
            ])
            .unwrap();
        assert_eq!(
            store.children("Tasks").unwrap(),
            ["kafka-0-broker", "kafka-1-broker"]
        );
        assert_eq!(store.children("").unwrap(), ["Tasks", "Tasks2"]);
        store.delete("Tasks/kafka-0-broker").unwrap();
        assert_eq!(store.children("Tasks").unwrap(), ["kafka-1-broker"]);
        store.delete("Tasks").unwrap();
        assert_eq!(store.paths(), ["Tasks2"]);
    }

    #[test]
    fn a_failed_apply_writes_nothing() {
        let mut store = MemPersister::new();
        store.fail_next_apply("zk session lost");
        let error = store.set("ConfigTarget", b"x".to_vec()).unwrap_err();
        assert_eq!(error.to_string(), "state store: zk session lost");
        assert!(store.paths().is_empty());
        store.set("ConfigTarget", b"x".to_vec()).unwrap();
        assert_eq!(
            store.get("ConfigTarget").unwrap().as_deref(),
            Some(&b"x"[..])
        );
    }

    #[test]
    fn roots_follow_the_sdk_naming() {
        assert_eq!(service_root("kafka"), "/dcos-service-kafka");
        assert_eq!(service_root("/team/kafka"), "/dcos-service-team__kafka");
    }
}
