//! Helpers of the transaction tests that talk to a `strom broker` process over the raw
//! protocol: a guard that kills the process however the test ends, transactional record
//! batches built with kafka-protocol, and InitProducerId without a transactional id.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages as km;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::{BrokerProcess, RawClient};

/// Kills the broker process when the test ends, also on a failed assertion.
pub struct Running(pub BrokerProcess);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.child.kill();
        let _ = self.0.child.wait();
    }
}

/// A transactional batch of `count` records for `(producer id, epoch)`, sequences from
/// `base_sequence`, record `i`'s value `value(i)`.
pub fn transactional_batch(
    producer: (i64, i16),
    base_sequence: i32,
    count: usize,
    value: impl Fn(usize) -> String,
) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: true,
            control: false,
            partition_leader_epoch: -1,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: base_sequence + i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(value(i))),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
    buf.freeze()
}

/// InitProducerId v4 without a transactional id: a fresh `(producer id, epoch)`, which the
/// transaction coordinator never sees.
pub fn init_producer_id(raw: &mut RawClient) -> (i64, i16) {
    let mut request = km::InitProducerIdRequest::default();
    request.transactional_id = None;
    request.transaction_timeout_ms = 60_000;
    request.producer_id = km::ProducerId(-1);
    request.producer_epoch = -1;
    let response = raw.send(4, &request);
    assert_eq!(response.error_code, 0);
    (response.producer_id.0, response.producer_epoch)
}
