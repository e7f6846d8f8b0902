//! Arbitrary bytes as a `__transaction_state` record key and value (what a coordinator reads
//! when it loads a partition): each decoder must give a value or a `TxnLogError`, never a
//! panic, and a decoded value must re-encode (version 1) to bytes that decode to the same
//! metadata, with the same canonical encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strom_meta::txn::codec::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = decode_key(data) {
        assert_eq!(decode_key(&encode_key(&id)).unwrap(), id);
    }
    if let Ok(value) = decode_value(data) {
        let encoded = encode_value(&value, 1);
        let again = decode_value(&encoded).unwrap();
        let mut expected = value.partitions.clone();
        let mut got = again.partitions.clone();
        expected.sort();
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(
            TxnLogValue {
                partitions: vec![],
                ..again.clone()
            },
            TxnLogValue {
                partitions: vec![],
                ..value.clone()
            }
        );
        assert_eq!(encode_value(&again, 1), encoded);
        let _ = encode_value(&value, 0);
    }
});
