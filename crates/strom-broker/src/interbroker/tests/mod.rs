//! Every controller request survives the wire: built, encoded at the version a controller
//! sends, decoded at every version a broker accepts, and read back into the same command.

use bytes::BytesMut;
use kafka_protocol_3x::protocol::{Decodable, Encodable};

use super::*;

fn header() -> ControllerHeader {
    ControllerHeader {
        controller_id: 2,
        controller_epoch: 7,
        broker_epoch: 4_294_967_301,
    }
}

fn partition(topic: &str, index: i32, leader: BrokerId, isr: &[BrokerId]) -> PartitionCommand {
    PartitionCommand {
        info: PartitionInfo {
            partition: TopicPartition::new(topic, index),
            state: Versioned {
                value: LeaderAndIsr {
                    leader,
                    leader_epoch: 3 + index,
                    isr: isr.to_vec(),
                    controller_epoch: 6,
                },
                version: 11 + index,
            },
            replicas: vec![1, 2, 3],
        },
        topic_id: Uuid::from_u128(0x1234 + topic.len() as u128),
        is_new: index == 0,
    }
}

fn wire<T: Encodable + Decodable>(message: &T, version: i16) -> T {
    let mut buf = BytesMut::new();
    message.encode(&mut buf, version).expect("encodes");
    let mut bytes = buf.freeze();
    let decoded = T::decode(&mut bytes, version).expect("decodes");
    assert!(bytes.is_empty(), "nothing left over at v{version}");
    decoded
}

fn registration(id: BrokerId, port: u16, rack: Option<&str>) -> BrokerRegistration {
    BrokerRegistration {
        id,
        endpoints: vec![Endpoint {
            listener: "PLAINTEXT".to_string(),
            security_protocol: "PLAINTEXT".to_string(),
            host: "127.0.0.1".to_string(),
            port,
        }],
        rack: rack.map(str::to_string),
    }
}

#[test]
fn leader_and_isr_round_trips() {
    // Topics out of name order, partitions grouped back by topic in name order.
    let partitions = vec![
        partition("orders", 0, 1, &[1, 2, 3]),
        partition("audit", 1, 3, &[3, 1]),
        partition("orders", 2, 2, &[2]),
    ];
    let leaders = vec![
        LeaderAddress {
            id: 1,
            host: "127.0.0.1".to_string(),
            port: 9001,
        },
        LeaderAddress {
            id: 3,
            host: "127.0.0.1".to_string(),
            port: 9003,
        },
    ];
    let request = leader_and_isr_request(header(), &partitions, &leaders);
    for version in LEADER_AND_ISR_ACCEPTED {
        let received = wire(&request, version);
        let command = leader_and_isr_command(&received, version).unwrap();
        assert_eq!(command.header, header());
        assert_eq!(command.leaders, leaders);
        let mut expected = partitions.clone();
        expected.sort_by(|a, b| a.info.partition.cmp(&b.info.partition));
        assert_eq!(command.partitions, expected, "v{version}");
    }
    let old = leader_and_isr_command(&request, 4).unwrap_err();
    assert!(old.0.contains("v4"), "{old}");
}

#[test]
fn update_metadata_round_trips_with_deletions_and_offline_replicas() {
    let brokers = vec![
        registration(1, 9001, Some("a")),
        registration(3, 9003, None),
    ];
    let partitions = vec![partition("orders", 1, 1, &[1, 3])];
    let gone = TopicPartition::new("old", 0);
    let request = update_metadata_request(
        header(),
        &brokers,
        &partitions,
        &[(gone.clone(), Uuid::from_u128(9))],
    );
    // Broker 2 is not live: it is an offline replica of orders-1.
    let orders = request
        .topic_states
        .iter()
        .find(|t| t.topic_name.0.as_str() == "orders")
        .unwrap();
    assert_eq!(
        orders.partition_states[0].offline_replicas,
        vec![WireBrokerId(2)]
    );
    for version in UPDATE_METADATA_ACCEPTED {
        let received = wire(&request, version);
        let command = update_metadata_command(&received, version).unwrap();
        assert_eq!(command.header, header());
        assert_eq!(command.brokers, brokers, "v{version}");
        assert_eq!(command.partitions, partitions, "v{version}");
        assert_eq!(command.deleted, vec![gone.clone()]);
    }
    assert!(update_metadata_command(&request, 6).is_err());
}

#[test]
fn stop_replica_round_trips() {
    let partitions = vec![
        (TopicPartition::new("b", 0), 4, true),
        (TopicPartition::new("a", 2), -1, false),
        (TopicPartition::new("b", 1), 5, true),
    ];
    let request = stop_replica_request(header(), &partitions);
    for version in STOP_REPLICA_ACCEPTED {
        let received = wire(&request, version);
        let command = stop_replica_command(&received, version).unwrap();
        assert_eq!(command.header, header());
        let mut expected = partitions.clone();
        expected.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(command.partitions, expected, "v{version}");
    }
    assert!(stop_replica_command(&request, 2).is_err());
}
