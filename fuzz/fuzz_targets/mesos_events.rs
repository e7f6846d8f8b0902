//! Arbitrary bytes as a Mesos v1 event stream (RecordIO-framed JSON), delivered in chunks of
//! sizes taken from the input: the decoder must give records or an error that sticks, never a
//! panic or a record longer than its limit; every record must decode to an event or a
//! `WireError`; every offered resource must survive a round trip through its Mesos JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_scheduler::engine::mesos::recordio::{encode, Decoder};
use strom_scheduler::engine::mesos::wire::{parse_event, resource_json, Event};

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(split).max(1);
    let mut decoder = Decoder::new(MAX);
    let mut records = Vec::new();
    let mut failed = None;
    for chunk in stream.chunks(step) {
        decoder.push(chunk);
        loop {
            match decoder.next_record() {
                Ok(Some(record)) => {
                    assert!(!record.is_empty() && record.len() <= MAX);
                    records.push(record);
                }
                Ok(None) => break,
                Err(error) => {
                    if let Some(previous) = &failed {
                        assert_eq!(previous, &error, "errors stick");
                    }
                    failed = Some(error);
                    break;
                }
            }
        }
    }
    // Whatever decoded, framed again, decodes to the same records in one piece.
    let mut again = Decoder::new(MAX);
    again.push(&records.iter().flat_map(|r| encode(r)).collect::<Vec<u8>>());
    for record in &records {
        assert_eq!(again.next_record().unwrap().as_ref(), Some(record));
    }
    for record in records.iter().chain(std::iter::once(&stream.to_vec())) {
        if let Ok(Event::Offers(offers)) = parse_event(record) {
            for resource in offers.iter().flat_map(|o| &o.resources) {
                let json = resource_json(resource, "role");
                let offer = serde_json::json!({"type": "OFFERS", "offers": {"offers": [{
                    "id": {"value": "o"}, "agent_id": {"value": "a"}, "hostname": "h",
                    "resources": [json]}]}});
                let Ok(Event::Offers(back)) = parse_event(offer.to_string().as_bytes()) else {
                    panic!("a resource's JSON does not parse back: {offer}");
                };
                assert_eq!(back[0].resources.first(), Some(resource));
            }
        }
    }
});
