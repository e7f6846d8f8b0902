//! The transaction decoders on arbitrary input: a `.txnindex` file (`decode_entries`, and
//! `TxnIndexes::load` reading it from disk as segment 0's index) and a transaction marker
//! (`parse_marker` on the input taken as a control batch). Nothing may panic; a decoded file
//! re-encodes to the input byte for byte, its entries are in marker order with first offsets
//! at or below their markers, and `load` accepts exactly the files `decode_entries` accepts
//! (every marker offset is at or above the segment's base 0). `aborted_transactions` on a
//! loaded index returns only entries overlapping the queried range, in order.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use strom_log::batch::BatchHeader;
use strom_log::control::parse_marker;
use strom_log::txn_index::{decode_entries, TxnIndexes, ENTRY_LEN, TXN_INDEX_SUFFIX};

/// A directory of this process (tmpfs when there is one).
fn scratch() -> PathBuf {
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("strom-fuzz-txnindex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch directory");
    dir
}

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = BatchHeader::parse(data) {
        if let Some(marker) = parse_marker(&header, data) {
            assert!(header.is_control());
            assert_eq!(marker.producer_id, header.producer_id);
        }
    }

    let decoded = decode_entries(data);
    if let Ok(entries) = &decoded {
        let encoded: Vec<u8> = entries.iter().flat_map(|e| e.encode()).collect();
        assert_eq!(encoded, data);
        assert_eq!(entries.len(), data.len() / ENTRY_LEN);
        assert!(entries.iter().all(|e| e.first_offset <= e.last_offset));
        assert!(entries
            .windows(2)
            .all(|w| w[0].last_offset < w[1].last_offset));
    }

    let dir = scratch();
    let file = dir.join(format!("{:020}.{TXN_INDEX_SUFFIX}", 0));
    std::fs::write(&file, data).expect("scratch write");
    let loaded = TxnIndexes::load(&dir, &[0]);
    assert_eq!(loaded.is_ok(), decoded.is_ok(), "load and decode disagree");
    if let (Ok(index), Ok(entries)) = (loaded, decoded) {
        let (start, upper) = match entries.first() {
            Some(e) => (e.first_offset, e.last_offset.saturating_add(1)),
            None => (0, 1),
        };
        for (s, u) in [(0, i64::MAX), (start, upper), (upper, start)] {
            let found = index.aborted_transactions(s, u);
            for (pid, first) in &found {
                assert!(entries.iter().any(|e| e.producer_id == *pid
                    && e.first_offset == *first
                    && e.last_offset >= s
                    && e.first_offset < u));
            }
        }
    }
});
