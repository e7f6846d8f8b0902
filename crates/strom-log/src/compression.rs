//! Decompression of a v2 record batch's records section, for timestamp lookups, compaction and
//! the produce checks that must see a compressed batch's records (`crate::validate`).
//!
//! The produce and fetch paths keep batches opaque and never come here. ListOffsets by timestamp
//! (and `MAX_TIMESTAMP`) must name the exact record inside a compressed batch, as Kafka's
//! `FileRecords.searchForTimestamp` does, so [`crate::batch::record_offsets_and_timestamps`]
//! inflates the records section with the batch's codec (`attributes & 7`):
//!
//! | codec | format |
//! | --- | --- |
//! | 1 gzip | gzip members (RFC 1952), concatenated members allowed |
//! | 2 snappy | snappy-java's "xerial" stream (`\x82SNAPPY\0`, version i32, compatible version i32, then blocks of `[i32 length][raw snappy block]`, a repeated header allowed between blocks), or, without that magic, one raw snappy block |
//! | 3 lz4 | LZ4 frame format (concatenated frames allowed) |
//! | 4 zstd | zstd frames |
//!
//! Client bytes are untrusted (the broker stores compressed batches without inflating them), so
//! output is capped: [`decompress`] stops and returns [`DecompressError::TooLarge`] as soon as
//! the output would pass the cap, before allocating past it. A decompression bomb is an error,
//! never an out-of-memory; malformed input is an error, never a panic.

use std::borrow::Cow;
use std::io::Read;

use crate::batch::{BatchHeader, BATCH_HEADER_LEN};

/// Largest records section a timestamp lookup inflates: 64 MiB, well above any batch a producer
/// sends under Kafka's limits (`message.max.bytes` bounds the compressed size, and producers
/// cap batches at `batch.size`/`batch.num.messages` before compressing).
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// The 8-byte magic that opens snappy-java's xerial stream format.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// The xerial header: magic, then version and compatible-version i32s.
const XERIAL_HEADER_LEN: usize = 16;

/// Why a compressed records section could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecompressError {
    /// `attributes & 7` is not a codec Kafka defines (5, 6, 7).
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    /// The data inflates past the cap (a decompression bomb, or an absurd batch).
    #[error("{codec} records inflate past the {limit}-byte cap")]
    TooLarge {
        /// The codec's name.
        codec: &'static str,
        /// The cap in bytes.
        limit: usize,
    },
    /// The compressed bytes are not valid for the codec.
    #[error("malformed {codec} data: {reason}")]
    Malformed {
        /// The codec's name.
        codec: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

/// Name of a codec as Kafka's `compression.type` spells it.
pub fn codec_name(codec: u8) -> &'static str {
    match codec {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}

fn malformed(codec: &'static str, reason: impl std::fmt::Display) -> DecompressError {
    DecompressError::Malformed {
        codec,
        reason: reason.to_string(),
    }
}

/// Inflates `data` compressed with `codec` (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd) into at
/// most `limit` bytes. More output than `limit` gives [`DecompressError::TooLarge`].
pub fn decompress(codec: u8, data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    match codec {
        0 if data.len() > limit => Err(DecompressError::TooLarge {
            codec: "none",
            limit,
        }),
        0 => Ok(data.to_vec()),
        1 => read_capped("gzip", flate2::read::MultiGzDecoder::new(data), limit),
        2 => snappy(data, limit),
        3 => read_capped("lz4", lz4_flex::frame::FrameDecoder::new(data), limit),
        4 => {
            let decoder =
                zstd::stream::read::Decoder::with_buffer(data).map_err(|e| malformed("zstd", e))?;
            read_capped("zstd", decoder, limit)
        }
        other => Err(DecompressError::UnknownCodec(other)),
    }
}

/// The records section of one batch (`batch` starts with its header and holds at least the
/// whole batch), inflated if the batch is compressed; borrowed as is if it is not.
pub fn decompress_records<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    limit: usize,
) -> Result<Cow<'a, [u8]>, DecompressError> {
    let end = header
        .total_len()
        .min(batch.len())
        .max(BATCH_HEADER_LEN.min(batch.len()));
    let records = &batch[BATCH_HEADER_LEN.min(end)..end];
    match header.compression() {
        0 => Ok(Cow::Borrowed(records)),
        codec => decompress(codec, records, limit).map(Cow::Owned),
    }
}

/// Reads `reader` to its end into a buffer of at most `limit` bytes.
fn read_capped(
    codec: &'static str,
    mut reader: impl Read,
    limit: usize,
) -> Result<Vec<u8>, DecompressError> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(malformed(codec, e)),
        };
        if n > limit - out.len() {
            return Err(DecompressError::TooLarge { codec, limit });
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Snappy as Kafka's clients write it: the xerial stream when the magic is there, else one raw
/// block. Each block's declared length is checked against the cap before anything is allocated.
fn snappy(data: &[u8], limit: usize) -> Result<Vec<u8>, DecompressError> {
    let mut decoder = snap::raw::Decoder::new();
    let mut out = Vec::new();
    let mut append = |block: &[u8], out: &mut Vec<u8>| -> Result<(), DecompressError> {
        let len = snap::raw::decompress_len(block).map_err(|e| malformed("snappy", e))?;
        if len > limit - out.len() {
            return Err(DecompressError::TooLarge {
                codec: "snappy",
                limit,
            });
        }
        let start = out.len();
        out.resize(start + len, 0);
        let written = decoder
            .decompress(block, &mut out[start..])
            .map_err(|e| malformed("snappy", e))?;
        out.truncate(start + written);
        Ok(())
    };
    if !data.starts_with(&XERIAL_MAGIC) {
        append(data, &mut out)?;
        return Ok(out);
    }
    let mut rest = data;
    while !rest.is_empty() {
        // A block length is a non-negative i32, so its first byte is never the magic's 0x82:
        // a repeated header (concatenated streams) is unambiguous.
        if rest.starts_with(&XERIAL_MAGIC) {
            if rest.len() < XERIAL_HEADER_LEN {
                return Err(malformed("snappy", "truncated xerial header"));
            }
            rest = &rest[XERIAL_HEADER_LEN..];
            continue;
        }
        let Some((len_bytes, after)) = rest.split_first_chunk::<4>() else {
            return Err(malformed("snappy", "truncated xerial block length"));
        };
        let len = i32::from_be_bytes(*len_bytes);
        let len = usize::try_from(len)
            .map_err(|_| malformed("snappy", format!("negative xerial block length {len}")))?;
        if len > after.len() {
            return Err(malformed(
                "snappy",
                format!("xerial block of {len} bytes, {} present", after.len()),
            ));
        }
        let (block, after) = after.split_at(len);
        append(block, &mut out)?;
        rest = after;
    }
    Ok(out)
}

/// Test-only encoders, with the same crates, in the forms Kafka's clients send.
#[cfg(test)]
pub(crate) mod test_encode {
    use std::io::Write;

    use super::XERIAL_MAGIC;

    /// Compresses `data` with `codec` (1 gzip, 2 snappy xerial-framed in `block`-byte blocks,
    /// 3 lz4 frame, 4 zstd); 0 returns it as is.
    pub fn compress(codec: u8, data: &[u8]) -> Vec<u8> {
        match codec {
            0 => data.to_vec(),
            1 => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).unwrap();
                encoder.finish().unwrap()
            }
            2 => xerial(data, 32 * 1024),
            3 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
                encoder.write_all(data).unwrap();
                encoder.finish().unwrap()
            }
            4 => zstd::stream::encode_all(data, 3).unwrap(),
            other => panic!("no encoder for codec {other}"),
        }
    }

    /// snappy-java's xerial stream: header (magic, version 1, compatible 1), then
    /// `[i32 length][raw snappy block]` per `block` bytes of input.
    pub fn xerial(data: &[u8], block: usize) -> Vec<u8> {
        let mut out = XERIAL_MAGIC.to_vec();
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        let mut encoder = snap::raw::Encoder::new();
        for chunk in data.chunks(block.max(1)) {
            let compressed = encoder.compress_vec(chunk).unwrap();
            out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
            out.extend_from_slice(&compressed);
        }
        out
    }

    /// Plain raw snappy: one block, no framing.
    pub fn raw_snappy(data: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(data).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_encode::{compress, raw_snappy, xerial};
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in 0..=4 {
            let compressed = compress(codec, &data);
            assert_eq!(
                decompress(codec, &compressed, MAX_DECOMPRESSED_BYTES).unwrap(),
                data,
                "{}",
                codec_name(codec)
            );
            assert_eq!(decompress(codec, &compress(codec, &[]), 0).unwrap(), b"");
        }
        assert_eq!(
            decompress(2, &raw_snappy(&data), MAX_DECOMPRESSED_BYTES).unwrap(),
            data
        );
    }

    #[test]
    fn xerial_streams_may_repeat_their_header() {
        let data = sample();
        let (a, b) = data.split_at(12_345);
        let joined = [xerial(a, 1000), xerial(b, 70_000)].concat();
        assert_eq!(decompress(2, &joined, usize::MAX).unwrap(), data);
        let mut truncated = xerial(&data, 1000);
        truncated.truncate(truncated.len() - 1);
        assert!(matches!(
            decompress(2, &truncated, usize::MAX),
            Err(DecompressError::Malformed { .. })
        ));
        let mut negative = XERIAL_MAGIC.to_vec();
        negative.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decompress(2, &negative, usize::MAX),
            Err(DecompressError::Malformed { .. })
        ));
    }

    #[test]
    fn exact_cap_is_allowed_and_one_byte_more_is_not() {
        let data = sample();
        for codec in 0..=4 {
            let compressed = compress(codec, &data);
            assert!(decompress(codec, &compressed, data.len()).is_ok());
            assert_eq!(
                decompress(codec, &compressed, data.len() - 1),
                Err(DecompressError::TooLarge {
                    codec: codec_name(codec),
                    limit: data.len() - 1
                })
            );
        }
        assert!(matches!(
            decompress(2, &raw_snappy(&data), data.len() - 1),
            Err(DecompressError::TooLarge { .. })
        ));
    }

    /// A few KiB of zeros that inflate past the real 64 MiB cap give an error for every codec.
    #[test]
    fn decompression_bombs_are_refused() {
        let zeros = vec![0u8; MAX_DECOMPRESSED_BYTES + 1];
        for codec in 1..=4 {
            let bomb = compress(codec, &zeros);
            assert!(bomb.len() < zeros.len() / 10, "{}", bomb.len());
            assert!(matches!(
                decompress(codec, &bomb, MAX_DECOMPRESSED_BYTES),
                Err(DecompressError::TooLarge { .. })
            ));
        }
        // One raw snappy block that declares 4 GiB of output is refused before allocating.
        let mut declared = vec![0x80, 0x80, 0x80, 0x80, 0x0f];
        declared.extend_from_slice(&raw_snappy(&[0u8; 100])[1..]);
        assert!(matches!(
            decompress(2, &declared, MAX_DECOMPRESSED_BYTES),
            Err(DecompressError::TooLarge { .. }) | Err(DecompressError::Malformed { .. })
        ));
    }

    #[test]
    fn unknown_codecs_are_refused() {
        for codec in 5..=7 {
            assert_eq!(
                decompress(codec, b"x", 10),
                Err(DecompressError::UnknownCodec(codec))
            );
        }
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(codec in 0u8..8, bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decompress(codec, &bytes, 1 << 20);
        }

        #[test]
        fn random_bytes_after_a_valid_prefix_never_panic(
            codec in 1u8..5,
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            cut in 0usize..200,
        ) {
            let valid = compress(codec, &sample()[..1000]);
            let cut = cut.min(valid.len());
            let mixed = [&valid[..cut], &bytes[..]].concat();
            let _ = decompress(codec, &mixed, 1 << 20);
            let xerial_mixed = [&XERIAL_MAGIC[..], &bytes[..]].concat();
            let _ = decompress(2, &xerial_mixed, 1 << 20);
        }

        #[test]
        fn corrupted_streams_never_panic(codec in 1u8..5, index in 0usize..2000, value in any::<u8>()) {
            let mut data = compress(codec, &sample()[..5000]);
            let i = index % data.len();
            data[i] = value;
            let _ = decompress(codec, &data, 1 << 20);
        }
    }
}
