//! KIP-392 fetch from follower on a replicated partition: which replicas may serve a
//! consumer, and which replica the leader sends a consumer in another rack to.
//!
//! The choice is the pure [`strom_meta::replica::selector`]; this shell gathers what the
//! leader knows for it (the ISR, each follower's acknowledged end offset, the racks of the
//! live brokers). It does not own the Fetch answer itself (the handler), nor how a follower
//! learns the high watermark it serves up to (the fetcher adopts the leader's, capped at its
//! own log end, after its fdatasync).

use std::collections::HashMap;

use kafka_protocol::error::ResponseError as E;
use strom_meta::replica::selector::{preferred_read_replica, ReplicaView};
use strom_meta::replica::Role;
use strom_meta::replication::BrokerId;

use super::partition::Partition;

impl Partition {
    /// A consumer's fetch that may be served by a follower (Fetch v11+, KIP-392): 0 on the
    /// leader, a follower or a single node; NOT_LEADER_OR_FOLLOWER on a replica that is
    /// stopped or was deposed and not told its new role yet.
    pub fn check_replica(&self) -> i16 {
        if !self.is_replicated() {
            return 0;
        }
        match self.replica_role() {
            Some(Role::Leader) | Some(Role::Follower { .. }) => 0,
            _ => E::NotLeaderOrFollower.code(),
        }
    }

    /// True while this broker follows the partition (a consumer's bytes read here count as
    /// served by a follower).
    pub fn is_follower(&self) -> bool {
        self.is_replicated() && matches!(self.replica_role(), Some(Role::Follower { .. }))
    }

    /// The replica this leader (broker `local`) sends a consumer in `client_rack` reading from
    /// `fetch_offset` to, or `None` to serve it here: Kafka's `RackAwareReplicaSelector` over
    /// the ISR, with `racks` the live brokers' `broker.rack`. `None` off the leader and on a
    /// single node.
    pub fn preferred_read_replica(
        &self,
        local: BrokerId,
        client_rack: &str,
        fetch_offset: i64,
        racks: &HashMap<BrokerId, String>,
    ) -> Option<BrokerId> {
        if !self.is_replicated() || client_rack.is_empty() {
            return None;
        }
        let log_end = self.log().lock().unwrap().log_end_offset();
        let guard = self.replication.lock().unwrap();
        let replica = &guard.as_ref()?.replica;
        if *replica.role() != Role::Leader {
            return None;
        }
        let views: Vec<ReplicaView<'_>> = replica
            .isr()
            .0
            .iter()
            .map(|&id| ReplicaView {
                id,
                rack: racks.get(&id).map(String::as_str),
                end_offset: if id == local {
                    log_end
                } else {
                    replica.follower(id).map_or(-1, |f| f.durable_end_offset)
                },
                in_sync: true,
            })
            .collect();
        preferred_read_replica(client_rack, local, &views, fetch_offset)
    }
}
