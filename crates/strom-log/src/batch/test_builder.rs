use super::*;

/// Describes a batch to encode.
#[derive(Clone, Debug)]
pub struct TestBatch {
    pub base_offset: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub attributes: i16,
    pub base_timestamp: i64,
    /// (timestamp delta, value) per record.
    pub records: Vec<(i64, Vec<u8>)>,
    /// Keys by record index; records past the end of the list have a null key.
    pub keys: Vec<Option<Vec<u8>>>,
    /// The header's `maxTimestamp` if not the true one (a lying producer).
    pub header_max_timestamp: Option<i64>,
}

impl TestBatch {
    /// A plain batch of `values` with timestamps `base_timestamp + i`.
    pub fn new(base_timestamp: i64, values: Vec<Vec<u8>>) -> TestBatch {
        TestBatch {
            base_offset: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
            base_timestamp,
            records: values
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i as i64, v))
                .collect(),
            keys: Vec::new(),
            header_max_timestamp: None,
        }
    }

    /// Sets the idempotent producer fields.
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> TestBatch {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Encodes the batch; a codec in `attributes & 7` compresses the records for real, with
    /// [`crate::compression::test_encode::compress`] (snappy xerial-framed).
    pub fn encode(&self) -> Vec<u8> {
        let codec = (self.attributes & COMPRESSION_MASK) as u8;
        self.encode_with(|records| crate::compression::test_encode::compress(codec, records))
    }

    /// Encodes the batch as snappy (codec 2) in one raw block, without xerial framing.
    pub fn encode_raw_snappy(&self) -> Vec<u8> {
        let mut batch = self.clone();
        batch.attributes = (self.attributes & !COMPRESSION_MASK) | 2;
        batch.encode_with(crate::compression::test_encode::raw_snappy)
    }

    /// Encodes the batch with `compress` applied to the records section.
    fn encode_with(&self, compress: impl Fn(&[u8]) -> Vec<u8>) -> Vec<u8> {
        use crate::records::put_varlong as varlong;
        let mut records = Vec::new();
        for (i, (ts_delta, value)) in self.records.iter().enumerate() {
            let mut body = vec![0u8];
            varlong(&mut body, *ts_delta);
            varlong(&mut body, i as i64);
            match self.keys.get(i) {
                Some(Some(key)) => {
                    varlong(&mut body, key.len() as i64);
                    body.extend_from_slice(key);
                }
                _ => varlong(&mut body, -1), // null key
            }
            varlong(&mut body, value.len() as i64);
            body.extend_from_slice(value);
            varlong(&mut body, 0); // no headers
            varlong(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
        let records = compress(&records);
        let count = self.records.len() as i32;
        let max_ts = self
            .records
            .iter()
            .map(|(d, _)| self.base_timestamp + d)
            .max()
            .unwrap_or(self.base_timestamp);
        let max_ts = self.header_max_timestamp.unwrap_or(max_ts);
        let mut out = Vec::with_capacity(BATCH_HEADER_LEN + records.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        let batch_length = (BATCH_HEADER_LEN - LOG_OVERHEAD + records.len()) as i32;
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        out.push(2);
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&self.attributes.to_be_bytes());
        out.extend_from_slice(&(count - 1).to_be_bytes());
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(&records);
        let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }
}
