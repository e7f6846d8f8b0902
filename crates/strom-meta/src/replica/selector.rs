//! KIP-392's replica selection: which replica a consumer should read a partition from, as
//! Kafka's `RackAwareReplicaSelector` decides it on the leader.
//!
//! A pure function over what the leader knows (the ISR, each member's rack and acknowledged
//! end offset). It does not own the answer's transport (the Fetch handler sets
//! `preferred_read_replica`) nor whether followers serve consumers (every replica does for
//! Fetch v11+, as Kafka's brokers do).

use crate::replication::BrokerId;

/// One replica as the selector sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaView<'a> {
    /// Its broker.
    pub id: BrokerId,
    /// Its broker's `broker.rack`, if it registered one.
    pub rack: Option<&'a str>,
    /// The end offset the leader knows it holds (its last fetch offset; the leader's own log
    /// end for the leader).
    pub end_offset: i64,
    /// Whether it is in the ISR.
    pub in_sync: bool,
}

/// The replica a consumer in `client_rack` fetching from `fetch_offset` should read from
/// instead of `leader`, or `None` to keep reading from the leader.
///
/// Kafka's `RackAwareReplicaSelector`: among the replicas in the client's rack, the leader if
/// it is one of them, else the one with the highest end offset (the lower broker id on a tie).
/// Only ISR members that already hold `fetch_offset` are candidates: an out-of-sync follower's
/// high watermark can stay behind indefinitely (KAFKA-14372), and one that lacks the offset
/// would answer OFFSET_OUT_OF_RANGE. An empty rack, or none of the replicas in it, keeps the
/// leader.
pub fn preferred_read_replica(
    client_rack: &str,
    leader: BrokerId,
    replicas: &[ReplicaView<'_>],
    fetch_offset: i64,
) -> Option<BrokerId> {
    if client_rack.is_empty() {
        return None;
    }
    let local: Vec<&ReplicaView<'_>> = replicas
        .iter()
        .filter(|r| r.rack == Some(client_rack))
        .collect();
    if local.iter().any(|r| r.id == leader) {
        return None;
    }
    local
        .into_iter()
        .filter(|r| r.in_sync && r.end_offset >= fetch_offset)
        .max_by(|a, b| a.end_offset.cmp(&b.end_offset).then(b.id.cmp(&a.id)))
        .map(|r| r.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(id: BrokerId, rack: &str, end_offset: i64, in_sync: bool) -> ReplicaView<'_> {
        ReplicaView {
            id,
            rack: Some(rack),
            end_offset,
            in_sync,
        }
    }

    #[test]
    fn a_follower_in_the_clients_rack_is_preferred() {
        let replicas = [view(1, "a", 100, true), view(2, "b", 90, true)];
        assert_eq!(preferred_read_replica("b", 1, &replicas, 50), Some(2));
    }

    #[test]
    fn the_leader_in_the_clients_rack_keeps_the_client() {
        let replicas = [view(1, "a", 100, true), view(2, "a", 100, true)];
        assert_eq!(preferred_read_replica("a", 1, &replicas, 50), None);
    }

    #[test]
    fn no_rack_or_no_replica_there_keeps_the_leader() {
        let replicas = [view(1, "a", 100, true), view(2, "b", 100, true)];
        assert_eq!(preferred_read_replica("", 1, &replicas, 0), None);
        assert_eq!(preferred_read_replica("c", 1, &replicas, 0), None);
        let unracked = [ReplicaView {
            id: 2,
            rack: None,
            end_offset: 100,
            in_sync: true,
        }];
        assert_eq!(preferred_read_replica("b", 1, &unracked, 0), None);
    }

    #[test]
    fn out_of_sync_or_short_followers_are_not_candidates() {
        let replicas = [
            view(1, "a", 100, true),
            view(2, "b", 100, false),
            view(3, "b", 40, true),
        ];
        assert_eq!(preferred_read_replica("b", 1, &replicas, 50), None);
        assert_eq!(preferred_read_replica("b", 1, &replicas, 40), Some(3));
    }

    #[test]
    fn the_most_caught_up_follower_wins_then_the_lower_id() {
        let replicas = [
            view(1, "a", 100, true),
            view(4, "b", 80, true),
            view(2, "b", 90, true),
            view(3, "b", 90, true),
        ];
        assert_eq!(preferred_read_replica("b", 1, &replicas, 10), Some(2));
    }
}
