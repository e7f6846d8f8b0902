//! Arbitrary bytes as the data of every Kafka znode Strom reads from ZooKeeper: each decoder
//! must give a value or a `ZnodeError`, never a panic, and whatever decodes must encode to
//! data that decodes to the same value (the store writes back what it reads).
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_meta::replication::TopicPartition;
use strom_meta::zk::znode::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(broker) = decode_broker(1, data) {
        let timestamp_ms = broker.timestamp_ms.unwrap_or(0);
        let again = decode_broker(
            1,
            &encode_broker(&broker.registration, broker.jmx_port, timestamp_ms),
        )
        .unwrap();
        assert_eq!(again.registration, broker.registration);
    }
    if let Ok(controller) = decode_controller(data) {
        let again = decode_controller(&encode_controller(controller.broker_id, 0)).unwrap();
        assert_eq!(again.broker_id, controller.broker_id);
    }
    if let Ok(epoch) = decode_controller_epoch(data) {
        assert_eq!(
            decode_controller_epoch(&encode_controller_epoch(epoch)).unwrap(),
            epoch
        );
    }
    if let Ok(assignment) = decode_topic_assignment("t", data) {
        assert_eq!(
            decode_topic_assignment("t", &encode_topic_assignment(&assignment)).unwrap(),
            assignment
        );
    }
    let partition = TopicPartition::new("t", 0);
    if let Ok(state) = decode_partition_state(&partition, data) {
        assert_eq!(
            decode_partition_state(&partition, &encode_partition_state(&state)).unwrap(),
            state
        );
    }
    if let Ok(config) = decode_topic_config("t", data) {
        assert_eq!(
            decode_topic_config("t", &encode_topic_config(&config)).unwrap(),
            config
        );
    }
    if let Ok(entity) = decode_config_change("config_change_0000000000", data) {
        let again =
            decode_config_change("config_change_0000000000", &encode_config_change(&entity))
                .unwrap();
        assert_eq!(again, entity);
    }
    if let Ok(partitions) = decode_isr_change("isr_change_0000000000", data) {
        let again =
            decode_isr_change("isr_change_0000000000", &encode_isr_change(&partitions)).unwrap();
        assert_eq!(again, partitions);
    }
    if let Ok(id) = decode_cluster_id(data) {
        assert_eq!(decode_cluster_id(&encode_cluster_id(&id)).unwrap(), id);
    }
    if let Ok(Some(block)) = decode_producer_id_block(data) {
        assert_eq!(
            decode_producer_id_block(&encode_producer_id_block(&block)).unwrap(),
            Some(block)
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(uuid) = decode_kafka_uuid(text) {
            assert_eq!(strom_meta::model::cluster_id_from_uuid(&uuid), text);
        }
    }
});
