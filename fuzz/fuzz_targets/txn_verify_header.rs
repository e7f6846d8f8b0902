//! The produce path's KIP-890 header peek (`strom_broker::services::txn::verify::
//! transactional_producer`), which reads a batch's magic, attributes, producer id and epoch
//! without decoding it, on arbitrary bytes: it must never panic, and on a batch that passes
//! the log's own header checks it must agree with the parsed header: `Some((producer id,
//! epoch))` exactly for a transactional data batch (not control) with a producer id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_broker::services::txn::verify::transactional_producer;
use strom_log::batch::BatchHeader;

fuzz_target!(|data: &[u8]| {
    let peeked = transactional_producer(data);
    let Ok(header) = BatchHeader::parse(data) else {
        assert_eq!(peeked, None, "a peek of bytes shorter than a header");
        return;
    };
    if header.magic != 2 {
        assert_eq!(peeked, None, "a peek of a magic {} batch", header.magic);
        return;
    }
    let expected = (header.is_transactional() && !header.is_control() && header.producer_id >= 0)
        .then_some((header.producer_id, header.producer_epoch));
    assert_eq!(peeked, expected, "{header:?}");
});
