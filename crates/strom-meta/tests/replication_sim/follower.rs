//! The follower half of a simulated broker: LeaderAndIsr applied to a replica, then
//! OffsetForLeaderEpoch and truncation, then fetching, each record made durable before the
//! next fetch names its offset.

use strom_meta::controller::PartitionInfo;
use strom_meta::replica::{self, PartitionReplica, ReplicaError, Role};
use strom_meta::replication::{BrokerId, TopicPartition, Versioned, NO_LEADER};

use super::broker::{Following, Msg};
use super::log::Record;
use super::{Event, World, FOLLOWER_TIMEOUT_MS};

impl World {
    pub(super) fn leader_and_isr(&mut self, to: BrokerId, info: PartitionInfo) {
        let PartitionInfo {
            partition,
            state,
            replicas,
        } = info;
        if !replicas.contains(&to) {
            return;
        }
        let settings = self.settings[&partition.topic];
        let broker = self.brokers.get_mut(&to).expect("known");
        broker
            .replicas
            .entry(partition.clone())
            .or_insert_with(|| PartitionReplica::new(partition.clone(), to, settings));
        let log = broker.logs.entry(partition.clone()).or_default();
        let Versioned { value, version } = state;
        if value.leader == to {
            let input = replica::Input::BecomeLeader {
                state: Versioned { value, version },
                replicas,
                log_end_offset: log.end_offset(),
                durable_end_offset: log.durable as i64,
                high_watermark: broker.high_watermark.get(&partition).copied().unwrap_or(0),
            };
            self.replica_step(to, &partition, input);
            return;
        }
        let (leader, epoch) = (value.leader, value.leader_epoch);
        self.replica_step(
            to,
            &partition,
            replica::Input::BecomeFollower {
                state: value,
                replicas,
            },
        );
        let broker = self.brokers.get_mut(&to).expect("known");
        let replica = &broker.replicas[&partition];
        if replica.role() != &(Role::Follower { leader }) || replica.leader_epoch() != epoch {
            return;
        }
        if leader == NO_LEADER {
            broker.following.remove(&partition);
            return;
        }
        let same = broker
            .following
            .get(&partition)
            .is_some_and(|f| f.leader == leader && f.epoch == epoch);
        if !same {
            broker.following.insert(
                partition.clone(),
                Following {
                    leader,
                    epoch,
                    truncated: false,
                    request: 0,
                },
            );
            self.next_follower_request(to, &partition, 0);
        }
    }

    /// Schedules the follower's next request after `delay_ms` under a fresh request id.
    pub(super) fn next_follower_request(
        &mut self,
        id: BrokerId,
        partition: &TopicPartition,
        delay_ms: u64,
    ) {
        let broker = self.brokers.get_mut(&id).expect("known");
        broker.next_request += 1;
        let request = broker.next_request;
        let incarnation = broker.incarnation;
        let Some(following) = broker.following.get_mut(partition) else {
            return;
        };
        following.request = request;
        let partition = partition.clone();
        self.schedule(
            delay_ms,
            Event::FollowerTimer {
                broker: id,
                incarnation,
                partition,
                request,
            },
        );
    }

    /// A follower timer: send the request it stands for (or, if its answer never came, again).
    pub(super) fn follower_timer(
        &mut self,
        id: BrokerId,
        partition: &TopicPartition,
        request: u64,
    ) {
        let broker = self.brokers.get_mut(&id).expect("known");
        let Some(following) = broker.following.get(partition).cloned() else {
            return;
        };
        if following.request != request {
            return;
        }
        let log = broker.logs.entry(partition.clone()).or_default();
        let (last_epoch, end_offset) = (log.last_epoch(), log.end_offset());
        if !following.truncated && last_epoch.is_none() {
            broker
                .following
                .get_mut(partition)
                .expect("present")
                .truncated = true;
        }
        // A fresh id for this attempt; the timeout re-sends if no answer arrives.
        broker.next_request += 1;
        let attempt = broker.next_request;
        broker
            .following
            .get_mut(partition)
            .expect("present")
            .request = attempt;
        let incarnation = broker.incarnation;
        let truncated = broker.following[partition].truncated;
        let msg = match (truncated, last_epoch) {
            (false, Some(requested)) => Msg::EpochQuery {
                from: id,
                partition: partition.clone(),
                epoch: following.epoch,
                requested,
                request: attempt,
            },
            _ => Msg::Fetch {
                from: id,
                partition: partition.clone(),
                fetch_offset: end_offset,
                epoch: following.epoch,
                request: attempt,
            },
        };
        self.send(id, following.leader, msg);
        let partition = partition.clone();
        self.schedule(
            FOLLOWER_TIMEOUT_MS,
            Event::FollowerTimer {
                broker: id,
                incarnation,
                partition,
                request: attempt,
            },
        );
    }

    pub(super) fn fetch_response(
        &mut self,
        to: BrokerId,
        partition: TopicPartition,
        request: u64,
        fetch_offset: i64,
        result: Result<(Vec<Record>, i64), ReplicaError>,
    ) {
        let (leader_log, epoch) = {
            let broker = &self.brokers[&to];
            let Some(following) = broker.following.get(&partition) else {
                return;
            };
            if following.request != request || !following.truncated {
                return;
            }
            (following.leader, following.epoch)
        };
        let Ok((records, high_watermark)) = result else {
            return; // the timer asks again
        };
        // The leader's log as it is now, if it still leads the epoch this follower follows.
        let leader_records: Option<Vec<Record>> = self
            .brokers
            .get(&leader_log)
            .filter(|b| b.alive)
            .filter(|b| {
                b.replicas
                    .get(&partition)
                    .is_some_and(|r| r.role() == &Role::Leader && r.leader_epoch() == epoch)
            })
            .and_then(|b| b.logs.get(&partition))
            .map(|l| l.records.clone());
        let broker = self.brokers.get_mut(&to).expect("known");
        let log = broker.logs.entry(partition.clone()).or_default();
        if log.end_offset() != fetch_offset {
            return;
        }
        for record in records {
            log.append(record);
        }
        // The follower makes the records durable before it asks from past them (its next
        // fetch offset is its acknowledgement).
        log.sync();
        // Its log is now a prefix of the leader's as the leader was when it answered: the
        // leader appends only while it leads an epoch, so this holds against its log now.
        if let Some(leader_records) = leader_records {
            let n = log.records.len().min(leader_records.len());
            assert_eq!(
                log.records[..n],
                leader_records[..n],
                "{partition}: follower {to} diverges from leader {leader_log}"
            );
        }
        let broker = self.brokers.get_mut(&to).expect("known");
        let end = broker.logs[&partition].end_offset();
        broker
            .high_watermark
            .insert(partition.clone(), high_watermark.min(end));
        let delay = 2 + self.below(6);
        self.next_follower_request(to, &partition, delay);
    }
}
