//! [`ZkStore`]'s topic znodes: assignments, configuration, partition states, the delete-topic
//! flow and ISR change notifications.

use std::collections::BTreeMap;

use zookeeper_client::{Error as ClientError, MultiWriteError, MultiWriteResult};

use super::store::{
    created_or_exists, fenced_error, persistent, persistent_sequential, ControllerFence, IsrChange,
    ZkStore,
};
use super::znode::{self, paths};
use super::{client_error, ZkError};
use crate::replication::{LeaderAndIsr, TopicAssignment, TopicPartition, Versioned};

/// The most partitions whose states one `multi` of [`ZkStore::create_partition_states`]
/// creates: two creates each, at most ~700 bytes with a 249-character topic name, so a request
/// stays well under ZooKeeper's default `jute.maxbuffer` of 1 MiB.
pub const PARTITION_STATES_PER_MULTI: usize = 500;

/// The most znodes one `multi` of [`ZkStore::delete_topic`] deletes: a delete is its path and
/// a version, so 1,000 of them with 249-character topic names stay under ~300 KiB.
pub const ZNODES_DELETED_PER_MULTI: usize = 1_000;

fn check_topic(topic: &str) -> Result<(), ZkError> {
    crate::validate_topic_name(topic).map_err(|reason| ZkError::InvalidTopic { reason })
}

impl ZkStore {
    /// Creates a topic as Kafka's admin client path does: its configuration overrides
    /// (`/config/topics/<t>`, replacing a leftover one) and its assignment
    /// (`/brokers/topics/<t>`), in one multi-op. The partition states are the controller's to
    /// write ([`ZkStore::create_partition_states`]) once it sees the topic.
    pub async fn create_topic(
        &self,
        topic: &str,
        assignment: &TopicAssignment,
        config: &BTreeMap<String, String>,
    ) -> Result<(), ZkError> {
        check_topic(topic)?;
        let topic_path = paths::topic(topic);
        let config_path = paths::topic_config(topic);
        let assignment_data = znode::encode_topic_assignment(assignment);
        let config_data = znode::encode_topic_config(config);
        for replace_config in [false, true] {
            let mut multi = self.client.new_multi_writer();
            multi
                .add_create(&topic_path, &assignment_data, &persistent())
                .map_err(client_error("multi", &topic_path))?;
            if replace_config {
                multi.add_set_data(&config_path, &config_data, None)
            } else {
                multi.add_create(&config_path, &config_data, &persistent())
            }
            .map_err(client_error("multi", &config_path))?;
            match multi.commit().await {
                Ok(_) => return Ok(()),
                Err(MultiWriteError::OperationFailed {
                    index: 0,
                    source: ClientError::NodeExists,
                }) => {
                    return Err(ZkError::TopicExists {
                        topic: topic.into(),
                    })
                }
                // A configuration left behind (Kafka writes it before the assignment):
                // replace it.
                Err(MultiWriteError::OperationFailed {
                    index: 1,
                    source: ClientError::NodeExists,
                }) if !replace_config => continue,
                Err(e) => return Err(client_error("multi", &topic_path)(e.into())),
            }
        }
        unreachable!("the second attempt replaces the configuration and returns")
    }

    /// The names of every topic (`/brokers/topics`).
    pub async fn topics(&self) -> Result<Vec<String>, ZkError> {
        let mut topics = self
            .client
            .list_children(paths::TOPICS)
            .await
            .map_err(client_error("list", paths::TOPICS))?;
        topics.sort();
        Ok(topics)
    }

    /// One topic's assignment and its znode version.
    pub async fn topic_assignment(
        &self,
        topic: &str,
    ) -> Result<Option<Versioned<TopicAssignment>>, ZkError> {
        let path = paths::topic(topic);
        match self.client.get_data(&path).await {
            Ok((data, stat)) => Ok(Some(Versioned {
                value: znode::decode_topic_assignment(topic, &data)?,
                version: stat.version,
            })),
            Err(ClientError::NoNode) => Ok(None),
            Err(e) => Err(client_error("get", &path)(e)),
        }
    }

    /// Every topic's assignment, with znode versions.
    pub async fn topic_assignments(
        &self,
    ) -> Result<BTreeMap<String, Versioned<TopicAssignment>>, ZkError> {
        let topics = self.topics().await?;
        let reads: Vec<_> = topics
            .iter()
            .map(|topic| (topic, self.client.get_data(&paths::topic(topic))))
            .collect();
        let mut assignments = BTreeMap::new();
        for (topic, read) in reads {
            match read.await {
                Ok((data, stat)) => {
                    let value = znode::decode_topic_assignment(topic, &data)?;
                    assignments.insert(
                        topic.clone(),
                        Versioned {
                            value,
                            version: stat.version,
                        },
                    );
                }
                Err(ClientError::NoNode) => {}
                Err(e) => return Err(client_error("get", &paths::topic(topic))(e)),
            }
        }
        Ok(assignments)
    }

    /// A topic's configuration overrides (empty if it has none).
    pub async fn topic_config(&self, topic: &str) -> Result<BTreeMap<String, String>, ZkError> {
        let path = paths::topic_config(topic);
        match self.client.get_data(&path).await {
            Ok((data, _)) => Ok(znode::decode_topic_config(topic, &data)?),
            Err(ClientError::NoNode) => Ok(BTreeMap::new()),
            Err(e) => Err(client_error("get", &path)(e)),
        }
    }

    /// Replaces a topic's configuration overrides and announces the change with a sequential
    /// `/config/changes/config_change_<seq>` naming `topics/<topic>`, as Kafka does. Returns
    /// the notification's name.
    pub async fn set_topic_config(
        &self,
        topic: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<String, ZkError> {
        check_topic(topic)?;
        let path = paths::topic_config(topic);
        let data = znode::encode_topic_config(config);
        match self.client.set_data(&path, &data, None).await {
            Ok(_) => {}
            Err(ClientError::NoNode) => {
                created_or_exists(self.client.create(&path, &data, &persistent()).await)
                    .map_err(client_error("create", &path))?;
            }
            Err(e) => return Err(client_error("set", &path)(e)),
        }
        let prefix = format!("{}/{}", paths::CONFIG_CHANGES, paths::CONFIG_CHANGE_PREFIX);
        let notification = znode::encode_config_change(&format!("topics/{topic}"));
        let (_, sequence) = self
            .client
            .create(&prefix, &notification, &persistent_sequential())
            .await
            .map_err(client_error("create", &prefix))?;
        Ok(format!("{}{sequence}", paths::CONFIG_CHANGE_PREFIX))
    }

    /// The configuration change notifications, oldest first: each one's name and the changed
    /// entity's path (`topics/<topic>`). Kafka's brokers apply them in order and remember the
    /// last one applied; the notifications' owner (the controller) deletes old ones.
    pub async fn config_changes(&self) -> Result<Vec<(String, String)>, ZkError> {
        let parent = paths::CONFIG_CHANGES;
        let mut names = self
            .client
            .list_children(parent)
            .await
            .map_err(client_error("list", parent))?;
        names.sort();
        let mut changes = Vec::with_capacity(names.len());
        for name in names {
            let path = format!("{parent}/{name}");
            match self.client.get_data(&path).await {
                Ok((data, _)) => {
                    let entity = znode::decode_config_change(&name, &data)?;
                    changes.push((name, entity));
                }
                Err(ClientError::NoNode) => {}
                Err(e) => return Err(client_error("get", &path)(e)),
            }
        }
        Ok(changes)
    }

    /// Deletes the configuration change notifications created before `before_ms` (ms since
    /// the epoch, ZooKeeper's `ctime`), as Kafka's brokers purge those older than 15 minutes
    /// (a broker away longer reads every topic's configuration anyway). Returns how many went.
    pub async fn purge_config_changes(&self, before_ms: i64) -> Result<usize, ZkError> {
        let parent = paths::CONFIG_CHANGES;
        let names = self
            .client
            .list_children(parent)
            .await
            .map_err(client_error("list", parent))?;
        let mut purged = 0;
        for name in names {
            let path = format!("{parent}/{name}");
            let stat = match self.client.check_stat(&path).await {
                Ok(Some(stat)) => stat,
                Ok(None) => continue,
                Err(e) => return Err(client_error("stat", &path)(e)),
            };
            if stat.ctime >= before_ms {
                continue;
            }
            match self.client.delete(&path, None).await {
                Ok(()) => purged += 1,
                Err(ClientError::NoNode) => {}
                Err(e) => return Err(client_error("delete", &path)(e)),
            }
        }
        Ok(purged)
    }

    /// Creates the initial state of each of a topic's partitions
    /// (`/brokers/topics/<t>/partitions/<p>/state`), fenced by the controller epoch. Returns
    /// each state's znode version. The creates go in `multi`s of at most
    /// [`PARTITION_STATES_PER_MULTI`] partitions, each with its own epoch check, because
    /// ZooKeeper drops the session of a request over `jute.maxbuffer` (1 MiB by default,
    /// about 3,700 partitions' states); a failed `multi` leaves the ones before it written.
    pub async fn create_partition_states(
        &self,
        topic: &str,
        states: &BTreeMap<i32, LeaderAndIsr>,
        fence: &ControllerFence,
    ) -> Result<BTreeMap<i32, i32>, ZkError> {
        let parent = paths::topic_partitions(topic);
        created_or_exists(self.client.create(&parent, &[], &persistent()).await)
            .map_err(client_error("create", &parent))?;
        let states: Vec<(&i32, &LeaderAndIsr)> = states.iter().collect();
        let mut versions = BTreeMap::new();
        for chunk in states.chunks(PARTITION_STATES_PER_MULTI) {
            self.create_partition_states_once(topic, chunk, fence, &mut versions)
                .await?;
        }
        Ok(versions)
    }

    /// One `multi` of [`ZkStore::create_partition_states`].
    async fn create_partition_states_once(
        &self,
        topic: &str,
        states: &[(&i32, &LeaderAndIsr)],
        fence: &ControllerFence,
        versions: &mut BTreeMap<i32, i32>,
    ) -> Result<(), ZkError> {
        let mut multi = self.client.new_multi_writer();
        multi
            .add_check_version(paths::CONTROLLER_EPOCH, fence.epoch_zk_version)
            .map_err(client_error("multi", paths::CONTROLLER_EPOCH))?;
        for (partition, state) in states {
            let tp = TopicPartition::new(topic, **partition);
            let partition_path = paths::partition(&tp);
            let state_path = paths::partition_state(&tp);
            multi
                .add_create(&partition_path, &[], &persistent())
                .map_err(client_error("multi", &partition_path))?;
            multi
                .add_create(
                    &state_path,
                    &znode::encode_partition_state(state),
                    &persistent(),
                )
                .map_err(client_error("multi", &state_path))?;
        }
        let parent = paths::topic_partitions(topic);
        let results = multi
            .commit()
            .await
            .map_err(|e| fenced_error(fence, &parent, "create", e))?;
        // Results: the check, then a partition node and its state per partition.
        for ((partition, _), result) in states.iter().zip(results.iter().skip(2).step_by(2)) {
            let version = match result {
                MultiWriteResult::Create { stat, .. } if stat.version >= 0 => stat.version,
                _ => 0,
            };
            versions.insert(**partition, version);
        }
        Ok(())
    }

    /// One partition's state and its znode version.
    pub async fn partition_state(
        &self,
        partition: &TopicPartition,
    ) -> Result<Option<Versioned<LeaderAndIsr>>, ZkError> {
        let path = paths::partition_state(partition);
        match self.client.get_data(&path).await {
            Ok((data, stat)) => Ok(Some(Versioned {
                value: znode::decode_partition_state(partition, &data)?,
                version: stat.version,
            })),
            Err(ClientError::NoNode) => Ok(None),
            Err(e) => Err(client_error("get", &path)(e)),
        }
    }

    /// Every partition state of `topic` that exists, with znode versions.
    pub async fn partition_states(
        &self,
        topic: &str,
    ) -> Result<BTreeMap<i32, Versioned<LeaderAndIsr>>, ZkError> {
        let parent = paths::topic_partitions(topic);
        let children = match self.client.list_children(&parent).await {
            Ok(children) => children,
            Err(ClientError::NoNode) => return Ok(BTreeMap::new()),
            Err(e) => return Err(client_error("list", &parent)(e)),
        };
        let mut partitions = Vec::with_capacity(children.len());
        for child in children {
            let index: i32 = child.parse().map_err(|_| znode::ZnodeError {
                path: format!("{parent}/{child}"),
                reason: "a partition's name must be its index".into(),
            })?;
            partitions.push(TopicPartition::new(topic, index));
        }
        let reads: Vec<_> = partitions
            .iter()
            .map(|tp| (tp, self.client.get_data(&paths::partition_state(tp))))
            .collect();
        let mut states = BTreeMap::new();
        for (tp, read) in reads {
            match read.await {
                Ok((data, stat)) => {
                    let value = znode::decode_partition_state(tp, &data)?;
                    states.insert(
                        tp.partition,
                        Versioned {
                            value,
                            version: stat.version,
                        },
                    );
                }
                Err(ClientError::NoNode) => {}
                Err(e) => return Err(client_error("get", &paths::partition_state(tp))(e)),
            }
        }
        Ok(states)
    }

    /// Every partition state of every topic, with znode versions (what a newly elected
    /// controller reads).
    pub async fn all_partition_states(
        &self,
    ) -> Result<BTreeMap<TopicPartition, Versioned<LeaderAndIsr>>, ZkError> {
        let mut all = BTreeMap::new();
        for topic in self.topics().await? {
            for (partition, state) in self.partition_states(&topic).await? {
                all.insert(TopicPartition::new(topic.clone(), partition), state);
            }
        }
        Ok(all)
    }

    /// Every partition state that exists, with znode versions, and the modification zxid
    /// (`mzxid`) of each: what a newly elected controller loads (its `state_zxids` tell a
    /// leader that registered again since its state was written).
    #[allow(clippy::type_complexity)]
    pub async fn all_partition_states_with_zxids(
        &self,
    ) -> Result<
        (
            BTreeMap<TopicPartition, Versioned<LeaderAndIsr>>,
            BTreeMap<TopicPartition, i64>,
        ),
        ZkError,
    > {
        let mut states = BTreeMap::new();
        let mut zxids = BTreeMap::new();
        for topic in self.topics().await? {
            let parent = paths::topic_partitions(&topic);
            let children = match self.client.list_children(&parent).await {
                Ok(children) => children,
                Err(ClientError::NoNode) => continue,
                Err(e) => return Err(client_error("list", &parent)(e)),
            };
            for child in children {
                let index: i32 = child.parse().map_err(|_| znode::ZnodeError {
                    path: format!("{parent}/{child}"),
                    reason: "a partition's name must be its index".into(),
                })?;
                let tp = TopicPartition::new(topic.clone(), index);
                let path = paths::partition_state(&tp);
                match self.client.get_data(&path).await {
                    Ok((data, stat)) => {
                        let value = znode::decode_partition_state(&tp, &data)?;
                        zxids.insert(tp.clone(), stat.mzxid);
                        states.insert(
                            tp,
                            Versioned {
                                value,
                                version: stat.version,
                            },
                        );
                    }
                    Err(ClientError::NoNode) => {}
                    Err(e) => return Err(client_error("get", &path)(e)),
                }
            }
        }
        Ok((states, zxids))
    }

    /// Writes a partition's state on condition that its znode is still at `expected_version`
    /// (and, for a controller's write, that the controller is not fenced). Returns the new
    /// version; [`ZkError::BadVersion`] if someone wrote it since it was read,
    /// [`ZkError::ControllerMoved`] if another controller was elected.
    pub async fn update_partition_state(
        &self,
        partition: &TopicPartition,
        state: &LeaderAndIsr,
        expected_version: i32,
        fence: Option<&ControllerFence>,
    ) -> Result<i32, ZkError> {
        let path = paths::partition_state(partition);
        let data = znode::encode_partition_state(state);
        let bad_version = || ZkError::BadVersion {
            path: path.clone(),
            expected_version,
        };
        let Some(fence) = fence else {
            return match self
                .client
                .set_data(&path, &data, Some(expected_version))
                .await
            {
                Ok(stat) => Ok(stat.version),
                Err(ClientError::BadVersion) => Err(bad_version()),
                Err(e) => Err(client_error("set", &path)(e)),
            };
        };
        let mut multi = self.client.new_multi_writer();
        multi
            .add_check_version(paths::CONTROLLER_EPOCH, fence.epoch_zk_version)
            .map_err(client_error("multi", paths::CONTROLLER_EPOCH))?;
        multi
            .add_set_data(&path, &data, Some(expected_version))
            .map_err(client_error("multi", &path))?;
        match multi.commit().await {
            Ok(results) => match results.get(1) {
                Some(MultiWriteResult::SetData { stat }) => Ok(stat.version),
                _ => Ok(expected_version + 1),
            },
            Err(MultiWriteError::OperationFailed {
                index: 1,
                source: ClientError::BadVersion,
            }) => Err(bad_version()),
            Err(e) => Err(fenced_error(fence, &path, "set", e)),
        }
    }

    /// Marks a topic for deletion (`/admin/delete_topics/<topic>`), as Kafka's admin path
    /// does; the controller carries it out. Marking twice is not an error.
    pub async fn mark_topic_for_deletion(&self, topic: &str) -> Result<(), ZkError> {
        check_topic(topic)?;
        if self.topic_assignment(topic).await?.is_none() {
            return Err(ZkError::UnknownTopic {
                topic: topic.into(),
            });
        }
        let path = paths::delete_topic(topic);
        created_or_exists(self.client.create(&path, &[], &persistent()).await)
            .map_err(client_error("create", &path))
    }

    /// The topics marked for deletion.
    pub async fn topics_marked_for_deletion(&self) -> Result<Vec<String>, ZkError> {
        let mut topics = self
            .client
            .list_children(paths::DELETE_TOPICS)
            .await
            .map_err(client_error("list", paths::DELETE_TOPICS))?;
        topics.sort();
        Ok(topics)
    }

    /// The controller's last step of a deletion: removes the topic's assignment, partitions
    /// and states, configuration and deletion mark (the replicas' logs are deleted before this,
    /// by the brokers). The znodes go children first, in multi-ops of at most
    /// [`ZNODES_DELETED_PER_MULTI`] deletes each fenced by the controller epoch, so a topic of
    /// any partition count fits ZooKeeper's request limit; the deletion mark goes in the last
    /// one. A controller that fails part way leaves the mark and the topic znode, and the next
    /// controller's deletion removes what is left.
    pub async fn delete_topic(&self, topic: &str, fence: &ControllerFence) -> Result<(), ZkError> {
        check_topic(topic)?;
        let topic_path = paths::topic(topic);
        let partitions_path = paths::topic_partitions(topic);
        let mut doomed = Vec::new();
        match self.client.list_children(&partitions_path).await {
            Ok(children) => {
                for child in children {
                    let partition_path = format!("{partitions_path}/{child}");
                    match self.client.list_children(&partition_path).await {
                        Ok(states) => doomed
                            .extend(states.iter().map(|name| format!("{partition_path}/{name}"))),
                        Err(ClientError::NoNode) => continue,
                        Err(e) => return Err(client_error("list", &partition_path)(e)),
                    }
                    doomed.push(partition_path);
                }
                doomed.push(partitions_path);
            }
            Err(ClientError::NoNode) => {}
            Err(e) => return Err(client_error("list", &partitions_path)(e)),
        }
        for path in [
            topic_path.clone(),
            paths::topic_config(topic),
            paths::delete_topic(topic),
        ] {
            let exists = self
                .client
                .check_stat(&path)
                .await
                .map_err(client_error("exists", &path))?;
            if exists.is_some() {
                doomed.push(path);
            }
        }
        for chunk in doomed.chunks(ZNODES_DELETED_PER_MULTI) {
            let mut multi = self.client.new_multi_writer();
            multi
                .add_check_version(paths::CONTROLLER_EPOCH, fence.epoch_zk_version)
                .map_err(client_error("multi", paths::CONTROLLER_EPOCH))?;
            for path in chunk {
                multi
                    .add_delete(path, None)
                    .map_err(client_error("multi", path))?;
            }
            multi
                .commit()
                .await
                .map(drop)
                .map_err(|e| fenced_error(fence, &topic_path, "delete", e))?;
        }
        Ok(())
    }

    /// The partitions `/admin/preferred_replica_election` asks preferred elections for, if it
    /// exists. A znode that does not decode is an error (the caller logs and deletes it).
    pub async fn preferred_replica_election(&self) -> Result<Option<Vec<TopicPartition>>, ZkError> {
        let path = paths::PREFERRED_REPLICA_ELECTION;
        match self.client.get_data(path).await {
            Ok((data, _)) => Ok(Some(znode::decode_preferred_replica_election(&data)?)),
            Err(ClientError::NoNode) => Ok(None),
            Err(e) => Err(client_error("get", path)(e)),
        }
    }

    /// Writes `/admin/preferred_replica_election` for `partitions`, as
    /// `kafka-preferred-replica-election.sh` does (fails if one is pending).
    pub async fn request_preferred_replica_election(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<(), ZkError> {
        let path = paths::PREFERRED_REPLICA_ELECTION;
        self.client
            .create(path, &znode::encode_isr_change(partitions), &persistent())
            .await
            .map(drop)
            .map_err(client_error("create", path))
    }

    /// Deletes `/admin/preferred_replica_election` (if it exists) in one `multi` with a check
    /// that `/controller_epoch` is still at the fence's version.
    pub async fn delete_preferred_replica_election(
        &self,
        fence: &ControllerFence,
    ) -> Result<(), ZkError> {
        self.fenced_set_or_delete(paths::PREFERRED_REPLICA_ELECTION, None, fence)
            .await
    }

    /// The controller's write of an admin znode it has acted on: if `path` exists, one `multi`
    /// of a check that `/controller_epoch` is still at the fence's version and either a set of
    /// `data` or (`None`) a delete. A znode gone meanwhile is not an error.
    pub(super) async fn fenced_set_or_delete(
        &self,
        path: &str,
        data: Option<&[u8]>,
        fence: &ControllerFence,
    ) -> Result<(), ZkError> {
        let exists = self
            .client
            .check_stat(path)
            .await
            .map_err(client_error("exists", path))?;
        if exists.is_none() {
            return Ok(());
        }
        let mut multi = self.client.new_multi_writer();
        multi
            .add_check_version(paths::CONTROLLER_EPOCH, fence.epoch_zk_version)
            .map_err(client_error("multi", paths::CONTROLLER_EPOCH))?;
        match data {
            Some(data) => multi.add_set_data(path, data, None),
            None => multi.add_delete(path, None),
        }
        .map_err(client_error("multi", path))?;
        match multi.commit().await {
            Ok(_) => Ok(()),
            Err(zookeeper_client::MultiWriteError::OperationFailed {
                index: 1,
                source: ClientError::NoNode,
            }) => Ok(()),
            Err(e) => Err(fenced_error(fence, path, "multi", e)),
        }
    }

    /// Announces that the ISR of `partitions` changed: a sequential
    /// `/isr_change_notification/isr_change_<seq>`, which the controller reads to tell the
    /// brokers. Returns the notification's name.
    pub async fn create_isr_change_notification(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<String, ZkError> {
        let prefix = format!("{}/{}", paths::ISR_CHANGES, paths::ISR_CHANGE_PREFIX);
        let (_, sequence) = self
            .client
            .create(
                &prefix,
                &znode::encode_isr_change(partitions),
                &persistent_sequential(),
            )
            .await
            .map_err(client_error("create", &prefix))?;
        Ok(format!("{}{sequence}", paths::ISR_CHANGE_PREFIX))
    }

    /// The pending ISR change notifications, oldest first.
    pub async fn isr_change_notifications(&self) -> Result<Vec<IsrChange>, ZkError> {
        let mut names = self
            .client
            .list_children(paths::ISR_CHANGES)
            .await
            .map_err(client_error("list", paths::ISR_CHANGES))?;
        names.sort();
        let reads: Vec<_> = names
            .into_iter()
            .map(|name| {
                let read = self
                    .client
                    .get_data(&format!("{}/{name}", paths::ISR_CHANGES));
                (name, read)
            })
            .collect();
        let mut changes = Vec::new();
        for (name, read) in reads {
            let data = match read.await {
                Ok((data, _)) => data,
                Err(ClientError::NoNode) => continue,
                Err(e) => {
                    return Err(client_error(
                        "get",
                        &format!("{}/{name}", paths::ISR_CHANGES),
                    )(e))
                }
            };
            let partitions = znode::decode_isr_change(&name, &data).unwrap_or_else(|error| {
                tracing::warn!("{error}; the notification is read as naming no partition");
                Vec::new()
            });
            changes.push(IsrChange { name, partitions });
        }
        Ok(changes)
    }

    /// Deletes processed ISR change notifications by name (already deleted ones are skipped).
    pub async fn delete_isr_change_notifications(&self, names: &[String]) -> Result<(), ZkError> {
        let deletes: Vec<_> = names
            .iter()
            .map(|name| {
                let path = format!("{}/{name}", paths::ISR_CHANGES);
                let delete = self.client.delete(&path, None);
                (path, delete)
            })
            .collect();
        for (path, delete) in deletes {
            match delete.await {
                Ok(()) | Err(ClientError::NoNode) => {}
                Err(e) => return Err(client_error("delete", &path)(e)),
            }
        }
        Ok(())
    }
}
