//! A raw-protocol consumer for benchmarks: reads partition 0 of a topic from offset 0 to its
//! high watermark with one Fetch version, one request at a time, and prints the rate. The
//! client only walks entry headers to find the next offset (v2 batches for Fetch v4+, message
//! set entries below), so at any version it costs next to nothing: the difference between
//! versions is the broker's (down-conversion below Fetch v4).
//!
//!   fetch_loop ADDR TOPIC VERSION [PARTITION_MAX_BYTES] [VALUE_BYTES]
//!
//! Prints one line: version, records, seconds, MB/s of record values (records × VALUE_BYTES).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages as km;
use kafka_protocol::protocol::{Decodable as _, Encodable as _};
use kafka_protocol_3x::messages as old;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: fetch_loop ADDR TOPIC VERSION [PARTITION_MAX_BYTES] [VALUE_BYTES]");
        std::process::exit(2);
    }
    let (addr, topic) = (&args[1], &args[2]);
    let version: i16 = args[3].parse().expect("a Fetch version");
    let partition_max_bytes: i32 = args.get(4).map_or(1 << 20, |a| a.parse().unwrap());
    let value_bytes: f64 = args.get(5).map_or(1023.0, |a| a.parse().unwrap());
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    let start = Instant::now();
    let mut offset = 0i64;
    let mut correlation = 0;
    loop {
        correlation += 1;
        let (records, high_watermark) = fetch(
            &mut stream,
            topic,
            version,
            offset,
            partition_max_bytes,
            correlation,
        );
        let next = next_offset(records, version < 4);
        if let Some(next) = next {
            offset = offset.max(next);
        }
        if offset >= high_watermark {
            break;
        }
        assert!(next.is_some(), "no progress at offset {offset}");
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "fetch v{version}: {offset} records in {seconds:.2} s, {:.0} MB/s",
        offset as f64 * value_bytes / seconds / 1e6
    );
}

/// One Fetch of partition 0 from `offset`: the records and the high watermark.
fn fetch(
    stream: &mut TcpStream,
    topic: &str,
    version: i16,
    offset: i64,
    partition_max_bytes: i32,
    correlation: i32,
) -> (Bytes, i64) {
    let mut body = BytesMut::new();
    if version < 4 {
        let mut p = old::fetch_request::FetchPartition::default();
        p.fetch_offset = offset;
        p.partition_max_bytes = partition_max_bytes;
        let mut t = old::fetch_request::FetchTopic::default();
        t.topic = old::TopicName(topic.to_string().into());
        t.partitions = vec![p];
        let mut request = old::FetchRequest::default();
        request.replica_id = old::BrokerId(-1);
        request.max_wait_ms = 500;
        request.min_bytes = 1;
        request.max_bytes = 50 << 20;
        request.topics = vec![t];
        kafka_protocol_3x::protocol::Encodable::encode(&request, &mut body, version).unwrap();
    } else {
        let mut p = km::fetch_request::FetchPartition::default();
        p.fetch_offset = offset;
        p.partition_max_bytes = partition_max_bytes;
        p.current_leader_epoch = -1;
        let mut t = km::fetch_request::FetchTopic::default();
        t.topic = km::TopicName(topic.to_string().into());
        t.partitions = vec![p];
        let mut request = km::FetchRequest::default();
        request.replica_id = km::BrokerId(-1);
        request.max_wait_ms = 500;
        request.min_bytes = 1;
        request.max_bytes = 50 << 20;
        request.session_epoch = -1;
        request.topics = vec![t];
        request.encode(&mut body, version).unwrap();
    }
    let mut header = km::RequestHeader::default();
    header.request_api_key = 1;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some("fetch-loop".to_string().into());
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header
        .encode(
            &mut frame,
            km::ApiKey::Fetch.request_header_version(version),
        )
        .unwrap();
    frame.extend_from_slice(&body);
    let size = frame.len() as i32 - 4;
    frame[0..4].copy_from_slice(&size.to_be_bytes());
    stream.write_all(&frame).unwrap();
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).unwrap();
    let mut reply = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut reply).unwrap();
    let mut reply = Bytes::from(reply);
    km::ResponseHeader::decode(
        &mut reply,
        km::ApiKey::Fetch.response_header_version(version),
    )
    .unwrap();
    if version < 4 {
        let response: old::FetchResponse =
            kafka_protocol_3x::protocol::Decodable::decode(&mut reply, version).unwrap();
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch error");
        (p.records.clone().unwrap_or_default(), p.high_watermark)
    } else {
        let response = km::FetchResponse::decode(&mut reply, version).unwrap();
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch error");
        (p.records.clone().unwrap_or_default(), p.high_watermark)
    }
}

/// The offset after the last whole entry: a v2 batch's last offset (base + lastOffsetDelta)
/// or a message set entry's offset (a wrapper's is its last inner record's), plus one.
fn next_offset(mut records: Bytes, message_set: bool) -> Option<i64> {
    let mut next = None;
    while records.len() >= 12 {
        let offset = records.get_i64();
        let size = records.get_i32() as usize;
        if records.len() < size {
            break;
        }
        next = Some(if message_set {
            offset + 1
        } else {
            offset + i64::from(i32::from_be_bytes(records[11..15].try_into().unwrap())) + 1
        });
        records.advance(size);
    }
    next
}
