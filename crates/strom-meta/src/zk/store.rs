//! [`ZkStore`]: the session, the cluster id, broker registration, the controller election and
//! producer id blocks. Topic and partition znodes are in `topics.rs`, watches in `watch.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use zookeeper_client::{
    Acls, Client, CreateMode, CreateOptions, Error as ClientError, MultiWriteError,
};

use super::znode::{self, paths, ProducerIdBlock, PRODUCER_ID_BLOCK_SIZE};
use super::{client_error, ZkConfig, ZkError};
use crate::replication::{BrokerId, BrokerRegistration, Versioned};

/// How many times an optimistic read-modify-write is tried before giving up: with N writers
/// racing, each round lets at least one through, so this bounds clusters far larger than
/// Strom's.
pub(super) const CONDITIONAL_ATTEMPTS: u32 = 1000;

/// A live broker as `/brokers/ids` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveBroker {
    /// What the broker registered.
    pub registration: BrokerRegistration,
    /// Kafka's broker epoch (KIP-380): the zxid that created the registration, which grows
    /// with every new registration of the same id, so a restarted broker is told apart from
    /// its previous life.
    pub broker_epoch: i64,
}

/// What a won election gives: the epoch, and the `/controller_epoch` znode version that fences
/// this controller's writes (each is made conditional on it, so a controller that lost its
/// session without noticing writes nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControllerFence {
    /// The controller epoch this controller won.
    pub epoch: i32,
    /// The `/controller_epoch` znode version its election wrote.
    pub epoch_zk_version: i32,
}

/// The outcome of [`ZkStore::elect_controller`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// This broker is the controller.
    Won(ControllerFence),
    /// Another broker is (`None` if it vanished again before it could be read).
    Lost {
        /// The controller's broker id.
        controller: Option<BrokerId>,
    },
}

/// An ISR change notification: its sequential name and the partitions it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrChange {
    /// The znode's name, `isr_change_<seq>`.
    pub name: String,
    /// The partitions whose ISR changed (empty if the data did not decode; Kafka reads those
    /// as empty too, so they are deleted rather than retried forever).
    pub partitions: Vec<crate::replication::TopicPartition>,
}

/// One ZooKeeper session, rooted at the chroot of `zookeeper.connect`.
///
/// Cloning shares the session. Dropping the last clone closes the session, which removes its
/// ephemeral znodes (the broker registration, `/controller` if held).
#[derive(Clone, Debug)]
pub struct ZkStore {
    /// Shared with the watch tasks only weakly, so dropping the last store closes the session.
    pub(super) client: Arc<Client>,
    config: ZkConfig,
}

pub(super) fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

pub(super) fn ephemeral() -> CreateOptions<'static> {
    CreateMode::Ephemeral.with_acls(Acls::anyone_all())
}

pub(super) fn persistent_sequential() -> CreateOptions<'static> {
    CreateMode::PersistentSequential.with_acls(Acls::anyone_all())
}

/// `Ok` for success or an already existing node.
pub(super) fn created_or_exists<T>(outcome: Result<T, ClientError>) -> Result<(), ClientError> {
    match outcome {
        Ok(_) | Err(ClientError::NodeExists) => Ok(()),
        Err(e) => Err(e),
    }
}

impl ZkStore {
    /// Connects as Kafka does: a session with `zookeeper.session.timeout.ms`, established
    /// within `zookeeper.connection.timeout.ms`; the chroot created if missing; then Kafka's
    /// persistent paths (`/brokers/ids`, `/brokers/topics`, `/config/…`, `/admin/delete_topics`,
    /// `/isr_change_notification`, `/latest_producer_id_block`, …) created if missing.
    pub async fn connect(config: &ZkConfig) -> Result<ZkStore, ZkError> {
        let (servers, chroot) = config.servers_and_chroot()?;
        let timeout = config.connection_timeout();
        let connector = Client::connector()
            .with_session_timeout(Duration::from_millis(config.session_timeout_ms));
        let client = match tokio::time::timeout(timeout, connector.connect(&servers)).await {
            Ok(Ok(client)) => client,
            Ok(Err(source)) => {
                return Err(ZkError::Client {
                    operation: "connect",
                    path: config.connect.clone(),
                    source,
                })
            }
            Err(_) => {
                return Err(ZkError::ConnectTimeout {
                    connect: config.connect.clone(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        };
        let client = match chroot.as_deref() {
            None => client,
            Some(chroot) => {
                client
                    .mkdir(chroot, &persistent())
                    .await
                    .map_err(client_error("create chroot", chroot))?;
                client.chroot(chroot).map_err(|_| ZkError::Config {
                    connect: config.connect.clone(),
                    reason: "the client refused the chroot".into(),
                })?
            }
        };
        // Parents come before children in the list, so each create finds its parent.
        for path in paths::PERSISTENT {
            created_or_exists(client.create(path, &[], &persistent()).await)
                .map_err(client_error("create", path))?;
        }
        Ok(ZkStore {
            client: Arc::new(client),
            config: config.clone(),
        })
    }

    /// A new session with the same configuration: what a broker does after
    /// [`super::SessionEvent::Expired`], before it registers again.
    pub async fn reconnect(&self) -> Result<ZkStore, ZkError> {
        ZkStore::connect(&self.config).await
    }

    /// The configuration this store connected with.
    pub fn config(&self) -> &ZkConfig {
        &self.config
    }

    /// The session's id (what `ephemeralOwner` shows on this session's ephemeral znodes).
    pub fn session_id(&self) -> i64 {
        self.client.session_id().0
    }

    /// The session timeout ZooKeeper granted (it clamps the asked one to 2–20 ticks).
    pub fn session_timeout(&self) -> Duration {
        self.client.session_timeout()
    }

    /// Reads `/cluster/id`, or creates it with `proposed` (a fresh
    /// [`crate::new_cluster_id`]) if it is missing; returns the cluster's id either way.
    pub async fn get_or_create_cluster_id(&self, proposed: &str) -> Result<String, ZkError> {
        let path = paths::CLUSTER_ID;
        for _ in 0..CONDITIONAL_ATTEMPTS {
            match self.client.get_data(path).await {
                Ok((data, _)) => return Ok(znode::decode_cluster_id(&data)?),
                Err(ClientError::NoNode) => {}
                Err(e) => return Err(client_error("get", path)(e)),
            }
            self.client
                .mkdir("/cluster", &persistent())
                .await
                .map_err(client_error("create", "/cluster"))?;
            created_or_exists(
                self.client
                    .create(path, &znode::encode_cluster_id(proposed), &persistent())
                    .await,
            )
            .map_err(client_error("create", path))?;
        }
        Err(ZkError::Contended {
            what: "get or create /cluster/id",
            attempts: CONDITIONAL_ATTEMPTS,
        })
    }

    /// Registers this broker: the ephemeral `/brokers/ids/<id>`, in Kafka's version 5 JSON
    /// (`now_ms` is its timestamp). Returns the broker epoch (the registration's creating zxid).
    ///
    /// If the znode exists and this session owns it (a retry after a lost connection), that
    /// registration is kept. If another session owns it, that is either another broker with
    /// this id or this broker's previous life whose session has not expired yet: the
    /// registration waits up to `wait` for the znode to go (a previous session goes within its
    /// session timeout) and then fails with [`ZkError::BrokerIdTaken`], as Kafka refuses to
    /// start.
    pub async fn register_broker(
        &self,
        registration: &BrokerRegistration,
        jmx_port: i32,
        now_ms: i64,
        wait: Duration,
    ) -> Result<i64, ZkError> {
        let path = paths::broker(registration.id);
        let data = znode::encode_broker(registration, jmx_port, now_ms);
        let started = Instant::now();
        let deadline = started + wait;
        loop {
            match self.client.create(&path, &data, &ephemeral()).await {
                Ok((stat, _)) => return Ok(stat.czxid),
                Err(ClientError::NodeExists) => {}
                Err(e) => return Err(client_error("create", &path)(e)),
            }
            let (stat, watcher) = self
                .client
                .check_and_watch_stat(&path)
                .await
                .map_err(client_error("exists", &path))?;
            let Some(stat) = stat else { continue };
            if stat.ephemeral_owner == self.session_id() {
                return Ok(stat.czxid);
            }
            if Instant::now() >= deadline {
                return Err(ZkError::BrokerIdTaken {
                    id: registration.id,
                    owner_session: stat.ephemeral_owner,
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            tracing::info!(
                broker = registration.id,
                owner_session = format!("0x{:x}", stat.ephemeral_owner),
                "{path} is held by another session; waiting for it to go"
            );
            // Woken by the deletion (or any change), else by the deadline; the loop re-checks.
            let _ = tokio::time::timeout_at(deadline, watcher.changed()).await;
        }
    }

    /// Every live broker, from `/brokers/ids`.
    pub async fn brokers(&self) -> Result<BTreeMap<BrokerId, LiveBroker>, ZkError> {
        let parent = paths::BROKER_IDS;
        let children = self
            .client
            .list_children(parent)
            .await
            .map_err(client_error("list", parent))?;
        let mut ids = Vec::with_capacity(children.len());
        for child in &children {
            let id: BrokerId = child.parse().map_err(|_| znode::ZnodeError {
                path: format!("{parent}/{child}"),
                reason: "a broker registration's name must be its broker.id".into(),
            })?;
            ids.push(id);
        }
        // The client sends each request when its future is made: all reads are in flight
        // before the first answer is awaited.
        let reads: Vec<_> = ids
            .iter()
            .map(|id| (*id, self.client.get_data(&paths::broker(*id))))
            .collect();
        let mut brokers = BTreeMap::new();
        for (id, read) in reads {
            match read.await {
                Ok((data, stat)) => {
                    let registration = znode::decode_broker(id, &data)?.registration;
                    brokers.insert(
                        id,
                        LiveBroker {
                            registration,
                            broker_epoch: stat.czxid,
                        },
                    );
                }
                // Gone between the listing and the read: not live any more.
                Err(ClientError::NoNode) => {}
                Err(e) => return Err(client_error("get", &paths::broker(id))(e)),
            }
        }
        Ok(brokers)
    }

    /// The active controller's broker id, if there is one.
    pub async fn controller(&self) -> Result<Option<BrokerId>, ZkError> {
        match self.client.get_data(paths::CONTROLLER).await {
            Ok((data, _)) => Ok(Some(znode::decode_controller(&data)?.broker_id)),
            Err(ClientError::NoNode) => Ok(None),
            Err(e) => Err(client_error("get", paths::CONTROLLER)(e)),
        }
    }

    /// The controller epoch and its znode version (`None` before the first election).
    pub async fn controller_epoch(&self) -> Result<Option<Versioned<i32>>, ZkError> {
        match self.client.get_data(paths::CONTROLLER_EPOCH).await {
            Ok((data, stat)) => Ok(Some(Versioned {
                value: znode::decode_controller_epoch(&data)?,
                version: stat.version,
            })),
            Err(ClientError::NoNode) => Ok(None),
            Err(e) => Err(client_error("get", paths::CONTROLLER_EPOCH)(e)),
        }
    }

    /// Tries to become the controller, as Kafka's `registerControllerAndIncrementControllerEpoch`:
    /// reads `/controller_epoch` (creating it at 0 if missing), then in one multi-op creates the
    /// ephemeral `/controller` and sets `/controller_epoch` to the next epoch on condition of
    /// the version read. Both happen or neither; so epochs strictly increase across winners.
    pub async fn elect_controller(
        &self,
        broker_id: BrokerId,
        now_ms: i64,
    ) -> Result<Election, ZkError> {
        let data = znode::encode_controller(broker_id, now_ms);
        for _ in 0..CONDITIONAL_ATTEMPTS {
            let current = match self.controller_epoch().await? {
                Some(current) => current,
                None => {
                    created_or_exists(
                        self.client
                            .create(
                                paths::CONTROLLER_EPOCH,
                                &znode::encode_controller_epoch(0),
                                &persistent(),
                            )
                            .await,
                    )
                    .map_err(client_error("create", paths::CONTROLLER_EPOCH))?;
                    continue;
                }
            };
            let epoch = current
                .value
                .checked_add(1)
                .ok_or_else(|| znode::ZnodeError {
                    path: paths::CONTROLLER_EPOCH.into(),
                    reason: "the controller epoch cannot grow past i32::MAX".into(),
                })?;
            let mut multi = self.client.new_multi_writer();
            multi
                .add_create(paths::CONTROLLER, &data, &ephemeral())
                .map_err(client_error("multi", paths::CONTROLLER))?;
            multi
                .add_set_data(
                    paths::CONTROLLER_EPOCH,
                    &znode::encode_controller_epoch(epoch),
                    Some(current.version),
                )
                .map_err(client_error("multi", paths::CONTROLLER_EPOCH))?;
            match multi.commit().await {
                Ok(results) => {
                    let epoch_zk_version = match results.get(1) {
                        Some(zookeeper_client::MultiWriteResult::SetData { stat }) => stat.version,
                        _ => current.version + 1,
                    };
                    return Ok(Election::Won(ControllerFence {
                        epoch,
                        epoch_zk_version,
                    }));
                }
                Err(MultiWriteError::OperationFailed {
                    index: 0,
                    source: ClientError::NodeExists,
                }) => {
                    let (data, stat) = match self.client.get_data(paths::CONTROLLER).await {
                        Ok(found) => found,
                        Err(ClientError::NoNode) => continue,
                        Err(e) => return Err(client_error("get", paths::CONTROLLER)(e)),
                    };
                    let controller = znode::decode_controller(&data)?.broker_id;
                    if controller == broker_id && stat.ephemeral_owner == self.session_id() {
                        // An earlier attempt of this session won and its answer was lost.
                        if let Some(now) = self.controller_epoch().await? {
                            return Ok(Election::Won(ControllerFence {
                                epoch: now.value,
                                epoch_zk_version: now.version,
                            }));
                        }
                    }
                    return Ok(Election::Lost {
                        controller: Some(controller),
                    });
                }
                // Another election bumped the epoch in between: read it again.
                Err(MultiWriteError::OperationFailed {
                    index: 1,
                    source: ClientError::BadVersion | ClientError::NoNode,
                }) => continue,
                Err(e) => return Err(client_error("multi", paths::CONTROLLER)(e.into())),
            }
        }
        Err(ZkError::Contended {
            what: "controller election",
            attempts: CONDITIONAL_ATTEMPTS,
        })
    }

    /// Deletes broker `id`'s registration if it is still the one created at `broker_epoch`
    /// (its czxid): how a broker that found a peer's process gone (its address refuses
    /// connections) ends that peer's registration without waiting for its session to expire.
    /// Returns whether it deleted it.
    pub async fn delete_broker_registration(
        &self,
        id: BrokerId,
        broker_epoch: i64,
    ) -> Result<bool, ZkError> {
        let path = paths::broker(id);
        let stat = match self.client.check_stat(&path).await {
            Ok(Some(stat)) => stat,
            Ok(None) => return Ok(false),
            Err(e) => return Err(client_error("exists", &path)(e)),
        };
        if stat.czxid != broker_epoch {
            return Ok(false);
        }
        match self.client.delete(&path, Some(stat.version)).await {
            Ok(()) => Ok(true),
            Err(ClientError::NoNode | ClientError::BadVersion) => Ok(false),
            Err(e) => Err(client_error("delete", &path)(e)),
        }
    }

    /// Deletes `/controller` if it still names `controller` (a broker found that controller's
    /// process gone), so the election starts without waiting for its session to expire.
    /// Returns whether it deleted it.
    pub async fn delete_controller_if(&self, controller: BrokerId) -> Result<bool, ZkError> {
        let (data, stat) = match self.client.get_data(paths::CONTROLLER).await {
            Ok(found) => found,
            Err(ClientError::NoNode) => return Ok(false),
            Err(e) => return Err(client_error("get", paths::CONTROLLER)(e)),
        };
        if znode::decode_controller(&data)?.broker_id != controller {
            return Ok(false);
        }
        match self
            .client
            .delete(paths::CONTROLLER, Some(stat.version))
            .await
        {
            Ok(()) => Ok(true),
            Err(ClientError::NoNode | ClientError::BadVersion) => Ok(false),
            Err(e) => Err(client_error("delete", paths::CONTROLLER)(e)),
        }
    }

    /// Gives up the controllership: deletes `/controller`, fenced by the epoch version.
    pub async fn resign_controller(&self, fence: &ControllerFence) -> Result<(), ZkError> {
        let mut multi = self.client.new_multi_writer();
        multi
            .add_check_version(paths::CONTROLLER_EPOCH, fence.epoch_zk_version)
            .map_err(client_error("multi", paths::CONTROLLER_EPOCH))?;
        multi
            .add_delete(paths::CONTROLLER, None)
            .map_err(client_error("multi", paths::CONTROLLER))?;
        match multi.commit().await {
            Ok(_) => Ok(()),
            Err(e) => Err(fenced_error(fence, paths::CONTROLLER, "delete", e)),
        }
    }

    /// Hands this broker the next block of [`PRODUCER_ID_BLOCK_SIZE`] producer ids: reads
    /// `/latest_producer_id_block`, writes the following block on condition of the version read,
    /// and retries on conflict, so blocks never overlap across brokers. The first block is
    /// `0..=999`, as in Kafka.
    pub async fn allocate_producer_id_block(
        &self,
        broker: BrokerId,
    ) -> Result<ProducerIdBlock, ZkError> {
        let path = paths::PRODUCER_ID_BLOCK;
        for _ in 0..CONDITIONAL_ATTEMPTS {
            let (data, stat) = match self.client.get_data(path).await {
                Ok(found) => found,
                Err(ClientError::NoNode) => {
                    created_or_exists(self.client.create(path, &[], &persistent()).await)
                        .map_err(client_error("create", path))?;
                    continue;
                }
                Err(e) => return Err(client_error("get", path)(e)),
            };
            let first = match znode::decode_producer_id_block(&data)? {
                None => 0,
                Some(previous) => {
                    if previous.last > i64::MAX - PRODUCER_ID_BLOCK_SIZE {
                        return Err(ZkError::ProducerIdsExhausted {
                            last: previous.last,
                        });
                    }
                    previous.last + 1
                }
            };
            let block = ProducerIdBlock {
                broker,
                first,
                last: first + PRODUCER_ID_BLOCK_SIZE - 1,
            };
            let written = self
                .client
                .set_data(
                    path,
                    &znode::encode_producer_id_block(&block),
                    Some(stat.version),
                )
                .await;
            match written {
                Ok(_) => return Ok(block),
                Err(ClientError::BadVersion) => continue,
                Err(e) => return Err(client_error("set", path)(e)),
            }
        }
        Err(ZkError::Contended {
            what: "producer id block allocation",
            attempts: CONDITIONAL_ATTEMPTS,
        })
    }
}

/// The error of a multi-op whose first operation checks the controller fence: a failed check
/// means another controller was elected; anything else is reported against `path`.
pub(super) fn fenced_error(
    fence: &ControllerFence,
    path: &str,
    operation: &'static str,
    error: MultiWriteError,
) -> ZkError {
    match error {
        MultiWriteError::OperationFailed {
            index: 0,
            source: ClientError::BadVersion | ClientError::NoNode,
        } => ZkError::ControllerMoved { epoch: fence.epoch },
        other => client_error(operation, path)(other.into()),
    }
}
