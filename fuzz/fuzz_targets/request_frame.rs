//! Arbitrary bytes as one request frame (the bytes after the 4-byte size prefix), decoded the
//! way the broker decodes every frame it reads: version checks, header, body. Whatever a
//! client sends must give a request or a `Refusal`, never a panic or an abort (every API of
//! `SUPPORTED`, DescribeLogDirs v0-4 included; seeds for it are in fuzz/seeds). Controller
//! requests (LeaderAndIsr, StopReplica, UpdateMetadata) are also read into their commands.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use libfuzzer_sys::fuzz_target;
use strom_broker::protocol::request::{decode_request, supported_range, Decoded};

// The broker's own allocator. kafka-protocol reserves `Vec::with_capacity(n)` with `n` taken
// from the wire before checking the frame holds `n` elements; the broker survives that because
// this allocator serves huge requests with untouched `MAP_NORESERVE` mappings. Without it the
// target would report the system allocator's refusal, a crash the real broker cannot have.
// (`scripts/fuzz` also raises libFuzzer's malloc/RSS limits; see there.)
#[global_allocator]
static ALLOCATOR: strom_broker::alloc::GuardedAllocator = strom_broker::alloc::GuardedAllocator;

fuzz_target!(|data: &[u8]| {
    match decode_request(Bytes::copy_from_slice(data)) {
        Ok(Decoded::Request(request)) => {
            // Only what `SUPPORTED` lists may reach a handler.
            let (min, max) = supported_range(request.context.api)
                .expect("decode_request accepted an API missing from SUPPORTED");
            assert!(
                (min..=max).contains(&request.context.version),
                "decode_request accepted {:?} v{} outside {min}..={max}",
                request.context.api,
                request.context.version
            );
        }
        Ok(Decoded::ApiVersionsTooNew { correlation_id }) => {
            // Only an ApiVersions request newer than supported is answered this way, and the
            // correlation id is the one at bytes 4..8.
            assert_eq!(&data[0..2], &(ApiKey::ApiVersions as i16).to_be_bytes());
            let (_, max) = supported_range(ApiKey::ApiVersions).expect("ApiVersions supported");
            assert!(i16::from_be_bytes([data[2], data[3]]) > max);
            assert_eq!(&data[4..8], &correlation_id.to_be_bytes());
        }
        Ok(Decoded::InterBroker(request)) => {
            // A controller request (keys 4-6) or ControlledShutdown (7) at the versions Strom
            // brokers speak, and reading it into a command (what the handler does next) must not
            // panic either.
            use strom_broker::interbroker as ib;
            use strom_broker::protocol::interbroker::InterBrokerBody as B;
            assert!((4..=7).contains(&request.key), "key {}", request.key);
            match &request.body {
                B::LeaderAndIsr(body) => drop(ib::leader_and_isr_command(body, request.version)),
                B::StopReplica(body) => drop(ib::stop_replica_command(body, request.version)),
                B::UpdateMetadata(body) => drop(ib::update_metadata_command(body, request.version)),
                // The handler reads the broker id and epoch and asks the controller.
                B::ControlledShutdown(body) => {
                    std::hint::black_box((body.broker_id.0, body.broker_epoch));
                }
            }
        }
        // The refusal is logged by the broker, so formatting it must not panic either.
        Err(refusal) => drop(refusal.to_string()),
    }
});
