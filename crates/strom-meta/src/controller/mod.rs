//! The ZooKeeper-era controller (Kafka's `KafkaController` with its partition and replica
//! state machines) as a pure state machine, and replica placement ([`assignment`]).
//!
//! [`Controller::step`] takes an [`Input`] (what the shell read from ZooKeeper or heard from a
//! watch or a broker) and returns [`Effect`]s (conditional znode writes, reads, requests to
//! brokers). It does no I/O and reads no clock. The shell owns the election itself (creating
//! the ephemeral `/controller`, bumping `/controller_epoch` conditionally, then loading a
//! [`ClusterSnapshot`]), the watches, the ZooKeeper client, and the inter-broker connections;
//! it performs every [`Effect::WriteState`] as one ZooKeeper `multi` of a version check on
//! `/controller_epoch` and the conditional write, so a controller that lost the election can
//! write nothing (Kafka 2.2+'s zkVersion fencing). [`Controller::elect_leaders`] is Kafka's
//! ElectLeaders (preferred and unclean elections asked for by an admin); `shutdown.rs` is
//! controlled shutdown ([`Input::ControlledShutdown`]) and `balance.rs` the automatic leader
//! balance ([`Input::Tick`]) and `/admin/preferred_replica_election`
//! ([`Input::PreferredReplicaElection`]); [`Controller::alter_reassignments`] and the
//! `/admin/reassign_partitions` znode ([`Input::ZnodeReassignment`]) move partitions between
//! brokers (`reassign.rs`).
//!
//! Rules, as Kafka's: a new partition's leader is its first live replica and its ISR the live
//! replicas; a partition whose leader is gone elects the first live ISR member in assignment
//! order, or, only when the topic sets `unclean.leader.election.enable`, the first live
//! replica with the ISR reset to it; a dead broker leaves every ISR (the last member stays, so
//! the partition can come back cleanly); every such change bumps the leader epoch; every write
//! is conditional on the version last read, and a conflict re-reads and decides again.

pub mod assignment;
pub mod partitions;
mod state;

#[cfg(test)]
mod tests;

pub use state::reassign::{PartitionReassignment, ReassignOutcome, ReassignResult};
pub use state::Controller;

use std::collections::{BTreeMap, BTreeSet};

use crate::replication::{BrokerId, BrokerRegistration, LeaderAndIsr, TopicPartition, Versioned};

/// A topic as the controller sees it: its assignment and the one setting elections read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// The `/brokers/topics/<t>` znode.
    pub assignment: crate::replication::TopicAssignment,
    /// The topic's `unclean.leader.election.enable` (resolved; false by default).
    pub unclean_leader_election: bool,
}

/// A registered broker and its broker epoch (the creation zxid of its `/brokers/ids/<id>`
/// znode): a broker that restarted between two reads has the same id and a new epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveBroker {
    /// The registration.
    pub registration: BrokerRegistration,
    /// The creation zxid of its registration.
    pub broker_epoch: i64,
}

/// Everything a newly elected controller loads from ZooKeeper.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshot {
    /// The epoch this controller won (the value it wrote to `/controller_epoch`).
    pub controller_epoch: i32,
    /// The version of `/controller_epoch` after that write: every write checks it.
    pub controller_epoch_version: i32,
    /// The registered brokers.
    pub brokers: Vec<LiveBroker>,
    /// Every topic.
    pub topics: BTreeMap<String, TopicInfo>,
    /// Every partition-state znode that exists.
    pub states: BTreeMap<TopicPartition, Versioned<LeaderAndIsr>>,
    /// The modification zxid (`stat.mzxid`) of each partition-state znode. A leader whose
    /// registration is newer (its `broker_epoch` is larger) registered again since it was
    /// elected: it may have restarted and lost an unflushed tail of its epoch, so the
    /// controller elects again with a new epoch rather than let it resume the old one.
    pub state_zxids: BTreeMap<TopicPartition, i64>,
    /// The children of `/admin/delete_topics`.
    pub deleting: BTreeSet<String>,
}

/// What a controller counted while this broker held the office (Kafka's `ControllerStats`),
/// summed over its terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerStats {
    /// Leader elections written: a partition whose leader was gone (or had restarted) got a
    /// leader, clean or unclean.
    pub leader_elections: u64,
    /// Of those, elections of a replica outside the ISR (`unclean.leader.election.enable`).
    pub unclean_leader_elections: u64,
}

/// The election an admin asks for (Kafka's `ElectionType`: 0 preferred, 1 unclean).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionType {
    /// Move leadership to the first assigned replica, if it is alive and in the ISR.
    Preferred,
    /// Give a partition without a live leader the first live replica, even outside the ISR.
    Unclean,
}

/// What [`Controller::elect_leaders`] decided for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionOutcome {
    /// The election is written (NONE); brokers learn it by LeaderAndIsr as for any election.
    Started,
    /// The wanted leader already leads (ELECTION_NOT_NEEDED).
    NotNeeded,
    /// The preferred replica is not alive or not in the ISR (PREFERRED_LEADER_NOT_AVAILABLE).
    PreferredNotAvailable,
    /// No live replica can lead (ELIGIBLE_LEADERS_NOT_AVAILABLE).
    EligibleNotAvailable,
    /// No such partition, or its topic is being deleted (UNKNOWN_TOPIC_OR_PARTITION).
    UnknownPartition,
}

impl ElectionOutcome {
    /// Kafka's error code for the outcome.
    pub fn code(self) -> i16 {
        match self {
            ElectionOutcome::Started => 0,
            ElectionOutcome::NotNeeded => 84,
            ElectionOutcome::PreferredNotAvailable => 80,
            ElectionOutcome::EligibleNotAvailable => 83,
            ElectionOutcome::UnknownPartition => 3,
        }
    }
}

/// What [`Controller::elect_leaders`] returns: each partition's outcome, and the effects
/// to perform.
pub type ElectionResult = (Vec<(TopicPartition, ElectionOutcome)>, Vec<Effect>);

/// A partition's state as sent to brokers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionInfo {
    /// The partition.
    pub partition: TopicPartition,
    /// Its state znode and version.
    pub state: Versioned<LeaderAndIsr>,
    /// Its assigned replicas.
    pub replicas: Vec<BrokerId>,
}

/// What happens to the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// This broker won the election; here is what it loaded.
    Elected(ClusterSnapshot),
    /// `/controller` changed or vanished (`None`): unless it names this broker, resign.
    ControllerChanged {
        /// The broker id in `/controller`, if any.
        controller: Option<BrokerId>,
    },
    /// This broker's ZooKeeper session expired: resign.
    SessionExpired,
    /// The children of `/brokers/ids` (with their data) as read after a watch fired.
    BrokersChanged {
        /// Every registered broker.
        brokers: Vec<LiveBroker>,
    },
    /// The children of `/brokers/topics` (with their data and configs) after a watch fired.
    TopicsChanged {
        /// Every topic.
        topics: BTreeMap<String, TopicInfo>,
    },
    /// A topic's `unclean.leader.election.enable` changed (`/config/changes`).
    TopicConfigChanged {
        /// The topic.
        topic: String,
        /// The new setting.
        unclean_leader_election: bool,
    },
    /// Entries appeared under `/isr_change_notification` naming these partitions.
    IsrChangeNotification {
        /// The partitions whose ISR a leader changed.
        partitions: Vec<TopicPartition>,
    },
    /// The answer to [`Effect::ReadStates`]: `None` for a znode that does not exist.
    StatesRead {
        /// Each partition read.
        states: Vec<(TopicPartition, Option<Versioned<LeaderAndIsr>>)>,
    },
    /// [`Effect::WriteState`] succeeded.
    StateWritten {
        /// The partition.
        partition: TopicPartition,
        /// The znode's new version.
        version: i32,
    },
    /// Several [`Effect::WriteState`]s succeeded (a shell that wrote them together, as a new
    /// topic's states are): the same as a [`Input::StateWritten`] for each, in order, in one
    /// step, so the brokers get one LeaderAndIsr and one UpdateMetadata each for all of them
    /// (Kafka's controller batches a new topic's partitions the same way).
    StatesWritten {
        /// Each partition and its znode's new version.
        written: Vec<(TopicPartition, i32)>,
    },
    /// [`Effect::WriteState`] failed its version condition on the partition state.
    StateWriteConflict {
        /// The partition.
        partition: TopicPartition,
    },
    /// A write failed the `/controller_epoch` check: another controller was elected.
    ControllerEpochMismatch,
    /// A child appeared under `/admin/delete_topics`.
    TopicDeletionRequested {
        /// The topic.
        topic: String,
    },
    /// A broker answered a StopReplica(delete) for the topic's partitions it holds.
    StopReplicaDone {
        /// The broker.
        broker: BrokerId,
        /// The topic.
        topic: String,
    },
    /// A broker asked to shut down (ControlledShutdown); answered by
    /// [`Effect::ControlledShutdownAnswer`] once its partitions' writes have settled.
    ControlledShutdown {
        /// The broker.
        broker: BrokerId,
        /// Its broker epoch (-1 from versions 0 and 1: not checked).
        broker_epoch: i64,
    },
    /// Time passed: runs the leader balance check when it is due
    /// ([`Controller::set_leader_balance`]).
    Tick {
        /// The shell's clock, in milliseconds.
        now_ms: u64,
    },
    /// `/admin/preferred_replica_election` exists and names these partitions: preferred
    /// elections for them, then [`Effect::DeletePreferredReplicaElection`].
    PreferredReplicaElection {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// `/admin/reassign_partitions` as read after its watch fired or after the election: the
    /// partitions a ZooKeeper-era tool wants moved and their target replicas (empty when the
    /// znode is absent).
    ZnodeReassignment {
        /// Each partition and its target replicas.
        partitions: Vec<(TopicPartition, Vec<BrokerId>)>,
    },
}

impl Input {
    /// The inputs this one stands for: each partition of an [`Input::StatesWritten`] as its
    /// own [`Input::StateWritten`], any other input as itself.
    fn one_by_one(self) -> Vec<Input> {
        match self {
            Input::StatesWritten { written } => written
                .into_iter()
                .map(|(partition, version)| Input::StateWritten { partition, version })
                .collect(),
            other => vec![other],
        }
    }
}

/// What the shell must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Write the partition-state znode: create it when `expected_version` is `None`, else
    /// set it if its version is still that; in one `multi` with a check that
    /// `/controller_epoch` is at `controller_epoch_version`. Answer with
    /// [`Input::StateWritten`], [`Input::StateWriteConflict`] or
    /// [`Input::ControllerEpochMismatch`].
    WriteState {
        /// The partition.
        partition: TopicPartition,
        /// The version the write is conditional on; `None` creates the znode.
        expected_version: Option<i32>,
        /// The new state.
        state: LeaderAndIsr,
        /// The `/controller_epoch` version this controller won at.
        controller_epoch_version: i32,
    },
    /// Read these partition-state znodes and answer [`Input::StatesRead`].
    ReadStates {
        /// The partitions.
        partitions: Vec<TopicPartition>,
    },
    /// Send LeaderAndIsr to `broker`.
    SendLeaderAndIsr {
        /// The receiver.
        broker: BrokerId,
        /// The receiver's broker epoch as this controller knows it (see
        /// [`ControllerEpochFence::accept`]).
        broker_epoch: i64,
        /// This controller's epoch.
        controller_epoch: i32,
        /// The partitions it holds a replica of.
        partitions: Vec<PartitionInfo>,
        /// The registrations of their leaders (so followers can connect).
        leaders: Vec<BrokerRegistration>,
    },
    /// Send UpdateMetadata to `broker`.
    SendUpdateMetadata {
        /// The receiver.
        broker: BrokerId,
        /// The receiver's broker epoch as this controller knows it (see
        /// [`ControllerEpochFence::accept`]).
        broker_epoch: i64,
        /// This controller's epoch.
        controller_epoch: i32,
        /// Every live broker.
        brokers: Vec<BrokerRegistration>,
        /// The partitions whose state changed (all of them after an election or a startup).
        partitions: Vec<PartitionInfo>,
        /// Partitions of deleted topics to forget.
        deleted: Vec<TopicPartition>,
    },
    /// Send StopReplica to `broker`; with `delete`, it removes the logs and answers
    /// [`Input::StopReplicaDone`].
    SendStopReplica {
        /// The receiver.
        broker: BrokerId,
        /// The receiver's broker epoch as this controller knows it (see
        /// [`ControllerEpochFence::accept`]).
        broker_epoch: i64,
        /// This controller's epoch.
        controller_epoch: i32,
        /// The topic.
        topic: String,
        /// Its partitions the broker holds.
        partitions: Vec<TopicPartition>,
        /// Delete the logs.
        delete: bool,
    },
    /// Every replica deleted the topic: remove `/brokers/topics/<t>` (recursively),
    /// `/config/topics/<t>` and `/admin/delete_topics/<t>` (checking `/controller_epoch`).
    DeleteTopicZnodes {
        /// The topic.
        topic: String,
        /// The `/controller_epoch` version this controller won at.
        controller_epoch_version: i32,
    },
    /// A reassignment step: in one `multi`, check `/controller_epoch` at
    /// `controller_epoch_version`, set the partition state if its version is still
    /// `expected_version`, and replace `/brokers/topics/<topic>` with `assignment`. Answered
    /// as [`Effect::WriteState`] is.
    WriteStateAndAssignment {
        /// The partition.
        partition: TopicPartition,
        /// The version the state write is conditional on.
        expected_version: i32,
        /// The new state.
        state: LeaderAndIsr,
        /// The topic's whole assignment after the step (with `adding_replicas` and
        /// `removing_replicas`).
        assignment: crate::replication::TopicAssignment,
        /// The `/controller_epoch` version this controller won at.
        controller_epoch_version: i32,
    },
    /// Rewrite `/admin/reassign_partitions` with the partitions still pending, or delete it
    /// when `remaining` is empty (checking `/controller_epoch`); nothing to do if it is gone.
    WriteZnodeReassignment {
        /// The partitions whose ZooKeeper-requested reassignment has not finished.
        remaining: Vec<(TopicPartition, Vec<BrokerId>)>,
        /// The `/controller_epoch` version this controller won at.
        controller_epoch_version: i32,
    },
    /// This broker is no longer the controller; the shell may run for election again.
    Resigned,
    /// Answer `broker`'s ControlledShutdown: an error code (0, STALE_BROKER_EPOCH 77,
    /// BROKER_NOT_AVAILABLE 8) and the replicated partitions it still leads.
    ControlledShutdownAnswer {
        /// The asking broker.
        broker: BrokerId,
        /// Kafka's error code.
        error_code: i16,
        /// The partitions it still leads.
        remaining: Vec<TopicPartition>,
    },
    /// Delete `/admin/preferred_replica_election` (checking `/controller_epoch`).
    DeletePreferredReplicaElection {
        /// The `/controller_epoch` version this controller won at.
        controller_epoch_version: i32,
    },
}

/// A broker's fence against stale controller requests: it remembers the highest controller
/// epoch it has seen and refuses requests from older ones with STALE_CONTROLLER_EPOCH (11),
/// and, as Kafka does since KIP-380, refuses requests addressed to an older registration of
/// itself (the broker epoch is the czxid of `/brokers/ids/<id>`) with STALE_BROKER_EPOCH (77).
/// A request for a registration newer than the one it knows, or any request before it has
/// registered, is not served yet ([`FenceRefusal::NotReady`]): a restarted broker must not take
/// orders a controller addressed to its previous process (which could make it resume that
/// process's leader epochs with a shorter log), and Kafka's controller keeps re-sending a
/// request until the broker takes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerEpochFence {
    latest: i32,
}

/// Kafka's STALE_CONTROLLER_EPOCH error code.
pub const STALE_CONTROLLER_EPOCH: i16 = 11;

/// Kafka's STALE_BROKER_EPOCH error code.
pub const STALE_BROKER_EPOCH: i16 = 77;

/// Why [`ControllerEpochFence::accept`] did not accept a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FenceRefusal {
    /// Answer STALE_CONTROLLER_EPOCH: the request comes from a deposed controller.
    StaleControllerEpoch,
    /// Answer STALE_BROKER_EPOCH: the request was meant for a previous registration.
    StaleBrokerEpoch,
    /// Not registered yet, or not yet told of the registration the request names: do not
    /// serve it now; the controller's channel delivers it again.
    NotReady,
}

impl FenceRefusal {
    /// The Kafka error code to answer with, if any.
    pub fn code(self) -> Option<i16> {
        match self {
            FenceRefusal::StaleControllerEpoch => Some(STALE_CONTROLLER_EPOCH),
            FenceRefusal::StaleBrokerEpoch => Some(STALE_BROKER_EPOCH),
            FenceRefusal::NotReady => None,
        }
    }
}

impl ControllerEpochFence {
    /// Accepts a request carrying `controller_epoch` and the receiver's `broker_epoch` as the
    /// controller knows it, given this broker's current registration (`None` while it is not
    /// registered), raising the fence; or says why not.
    pub fn accept(
        &mut self,
        controller_epoch: i32,
        broker_epoch: i64,
        registered_epoch: Option<i64>,
    ) -> Result<(), FenceRefusal> {
        if controller_epoch < self.latest {
            return Err(FenceRefusal::StaleControllerEpoch);
        }
        match registered_epoch {
            None => return Err(FenceRefusal::NotReady),
            Some(own) if broker_epoch < own => return Err(FenceRefusal::StaleBrokerEpoch),
            Some(own) if broker_epoch > own => return Err(FenceRefusal::NotReady),
            Some(_) => {}
        }
        self.latest = controller_epoch;
        Ok(())
    }

    /// The highest controller epoch seen.
    pub fn latest(&self) -> i32 {
        self.latest
    }
}
