//! Strom's ZooKeeper store: the metadata of a replicated cluster kept in ZooKeeper in Kafka's
//! own layout, so a Strom cluster is coordinated like a Kafka ≤ 3.x cluster (and Kafka's tools
//! can read it).
//!
//! - [`znode`]: the paths and the JSON of every znode (pure codecs).
//! - [`ZkStore`]: one ZooKeeper session and the typed operations on it: cluster id, broker
//!   registration, controller election, reads with znode versions, topic creation and deletion,
//!   conditional partition-state updates, ISR change notifications, producer id blocks,
//!   dynamic broker configuration (`/config/brokers/`).
//! - [`ZkEvents`]: the watches, delivered on a channel as [`ZkEvent`]s, with the session's
//!   state changes.
//!
//! This module is the I/O shell around the controller's pure state machine (and the broker's
//! replica manager): it decides nothing. It does not elect leaders, choose ISRs or retry on a
//! lost session; it reports what ZooKeeper says, with conditional writes where Kafka makes
//! them (`/controller_epoch`'s znode version fences every controller write, a partition state is
//! written against the version it was read at). After [`SessionEvent::Expired`] the store is
//! dead: its ephemeral znodes are gone, and the caller connects a new one
//! ([`ZkStore::reconnect`]) and registers again, as Kafka does.
//!
//! The client is the `zookeeper-client` crate (async, spawning on tokio); every method must be
//! called inside a tokio runtime.

mod broker_configs;

mod partitions;

mod reassign;
mod store;
mod topics;
mod watch;
pub mod znode;

use std::time::Duration;

pub use reassign::{decode_reassignment, encode_reassignment, ReassignmentEntry};
pub use store::{ControllerFence, Election, IsrChange, LiveBroker, ZkStore};
pub use topics::{PARTITION_STATES_PER_MULTI, ZNODES_DELETED_PER_MULTI};
pub use watch::{SessionEvent, ZkEvent, ZkEvents};
pub use znode::{ProducerIdBlock, ZnodeError};

/// Kafka's default `zookeeper.session.timeout.ms`.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 18_000;

/// How to reach ZooKeeper: Kafka's `zookeeper.*` broker settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkConfig {
    /// `zookeeper.connect`: `host:port[,host:port…][/chroot]`.
    pub connect: String,
    /// `zookeeper.session.timeout.ms` (default 18000): how long ZooKeeper keeps the session,
    /// and so this broker's ephemeral znodes, after it last heard from the client.
    pub session_timeout_ms: u64,
    /// `zookeeper.connection.timeout.ms`: how long [`ZkStore::connect`] waits for a session;
    /// `None` means the session timeout, as in Kafka.
    pub connection_timeout_ms: Option<u64>,
}

impl ZkConfig {
    /// `connect` with Kafka's default timeouts.
    pub fn new(connect: impl Into<String>) -> ZkConfig {
        ZkConfig {
            connect: connect.into(),
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            connection_timeout_ms: None,
        }
    }

    /// The time [`ZkStore::connect`] waits for a session.
    pub fn connection_timeout(&self) -> Duration {
        Duration::from_millis(
            self.connection_timeout_ms
                .unwrap_or(self.session_timeout_ms),
        )
    }

    /// Splits `zookeeper.connect` into the servers and the chroot (`None` for the root), by the
    /// broker configuration's own rule ([`crate::config::ZkConnect::parse`]).
    pub fn servers_and_chroot(&self) -> Result<(String, Option<String>), ZkError> {
        let parsed = crate::config::ZkConnect::parse("zookeeper.connect", &self.connect).map_err(
            |error| ZkError::Config {
                connect: self.connect.clone(),
                reason: error.rule,
            },
        )?;
        Ok((parsed.servers_text(), parsed.chroot))
    }
}

/// Failures of the ZooKeeper store. Each names the path or the setting involved.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// `zookeeper.connect` is malformed.
    #[error("zookeeper.connect {connect:?} is invalid: {reason}")]
    Config {
        /// The setting's value.
        connect: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No session could be established within `zookeeper.connection.timeout.ms`.
    #[error("no ZooKeeper session with {connect} within {timeout_ms} ms (zookeeper.connection.timeout.ms)")]
    ConnectTimeout {
        /// `zookeeper.connect`.
        connect: String,
        /// The time waited.
        timeout_ms: u64,
    },
    /// ZooKeeper refused or failed an operation (including connection loss and an expired
    /// session).
    #[error("ZooKeeper {operation} {path}: {source}")]
    Client {
        /// What was asked (`create`, `get`, `set`, `delete`, `multi`, …).
        operation: &'static str,
        /// The path, relative to the chroot.
        path: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// A znode holds data that does not decode.
    #[error(transparent)]
    Znode(#[from] ZnodeError),
    /// A conditional write found the znode at another version than the one it was read at.
    #[error("znode {path} changed since version {expected_version} was read")]
    BadVersion {
        /// The znode.
        path: String,
        /// The version the write named.
        expected_version: i32,
    },
    /// A controller write was fenced: `/controller_epoch` is no longer at the version this
    /// controller's election left it at, so another controller was elected since.
    #[error("controller epoch {epoch} is fenced: another controller was elected")]
    ControllerMoved {
        /// The fenced controller's epoch.
        epoch: i32,
    },
    /// Another session holds `/brokers/ids/<id>` and did not let go in time.
    #[error(
        "broker.id {id} is registered in ZooKeeper by another session (0x{owner_session:x}) and \
         it was not released within {waited_ms} ms: another broker uses this broker.id, or this \
         broker's previous session has not expired yet"
    )]
    BrokerIdTaken {
        /// The `broker.id`.
        id: i32,
        /// The session owning the ephemeral znode.
        owner_session: i64,
        /// How long this registration waited for it to go.
        waited_ms: u64,
    },
    /// The topic already exists (`/brokers/topics/<topic>`).
    #[error("topic {topic} already exists")]
    TopicExists {
        /// The topic.
        topic: String,
    },
    /// The topic does not exist.
    #[error("topic {topic} does not exist")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// A topic name that cannot be a znode's name.
    #[error("{reason}")]
    InvalidTopic {
        /// Why, from the topic-name rules.
        reason: String,
    },
    /// The producer id space is exhausted.
    #[error("no producer id block after {last}: the 64-bit producer id space is exhausted")]
    ProducerIdsExhausted {
        /// The last id handed out.
        last: i64,
    },
    /// A conditional update kept conflicting with other writers.
    #[error("{what}: still conflicting after {attempts} attempts")]
    Contended {
        /// The operation.
        what: &'static str,
        /// How many attempts were made.
        attempts: u32,
    },
}

impl ZkError {
    /// Whether this is the client's "session expired" (the store is dead; reconnect).
    pub fn is_session_expired(&self) -> bool {
        matches!(
            self,
            ZkError::Client {
                source: zookeeper_client::Error::SessionExpired,
                ..
            }
        )
    }
}

/// Maps a client error on `operation` of `path` to a [`ZkError::Client`].
fn client_error<'a>(
    operation: &'static str,
    path: &'a str,
) -> impl FnOnce(zookeeper_client::Error) -> ZkError + 'a {
    move |source| ZkError::Client {
        operation,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_string_splits_servers_and_chroot() {
        let config = ZkConfig::new("127.0.0.1:2181,10.0.0.2:2181/strom/a");
        assert_eq!(
            config.servers_and_chroot().unwrap(),
            (
                "127.0.0.1:2181,10.0.0.2:2181".to_string(),
                Some("/strom/a".to_string())
            )
        );
        assert_eq!(
            ZkConfig::new("h:1").servers_and_chroot().unwrap(),
            ("h:1".to_string(), None)
        );
        assert_eq!(
            ZkConfig::new("h:1/").servers_and_chroot().unwrap(),
            ("h:1".to_string(), None)
        );
        assert_eq!(config.connection_timeout(), Duration::from_millis(18_000));
        for bad in [
            "",
            "/strom",
            "h:1,",
            "h:1/strom/",
            "h:1/a//b",
            "h:1/a/../b",
            ",h:1",
        ] {
            let err = ZkConfig::new(bad).servers_and_chroot().unwrap_err();
            assert!(matches!(err, ZkError::Config { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("zookeeper.connect"), "{err}");
        }
    }
}
