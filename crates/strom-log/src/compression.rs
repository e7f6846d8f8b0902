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
//! It knows codecs, not batches: finding a batch's records section and its codec is
//! [`crate::batch::decompress_records`]'s.
//!
//! Client bytes are untrusted (the broker stores compressed batches without inflating them), so
//! output is capped: [`decompress`] stops and returns [`DecompressError::TooLarge`] as soon as
//! the output would pass the cap, before allocating past it. A decompression bomb is an error,
//! never an out-of-memory; malformed input is an error, never a panic.

use std::io::Read;

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

/// Compresses `data` with `codec` the way Kafka's Java clients write it, for records this
/// broker builds itself: v2 batches converted from produced message sets (v0/v1) and message
/// sets down-converted for old fetches. gzip (RFC 1952), snappy in snappy-java's xerial stream
/// (32 KiB blocks), lz4 as one LZ4 frame (64 KiB independent blocks, no checksums beyond the
/// header's). `broken_lz4_header` writes the frame-descriptor checksum as magic 0 readers
/// expect it (Kafka's pre-KIP-57 bug: the hash also covers the frame's 4-byte magic number).
/// zstd is never written here: no v0/v1 reader knows it, and v2 conversions keep the
/// producer's codec, which for a message set is never zstd (it is refused first).
pub fn compress(
    codec: u8,
    data: &[u8],
    broken_lz4_header: bool,
) -> Result<Vec<u8>, DecompressError> {
    use std::io::Write;
    let failed = |codec: &'static str, e: std::io::Error| malformed(codec, e);
    match codec {
        0 => Ok(data.to_vec()),
        1 => {
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(data.len() / 2 + 64),
                flate2::Compression::default(),
            );
            encoder.write_all(data).map_err(|e| failed("gzip", e))?;
            encoder.finish().map_err(|e| failed("gzip", e))
        }
        2 => {
            let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2 + 64);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut encoder = snap::raw::Encoder::new();
            for chunk in data.chunks(XERIAL_BLOCK_LEN) {
                let block = encoder
                    .compress_vec(chunk)
                    .map_err(|e| malformed("snappy", e))?;
                out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        3 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(
                info,
                Vec::with_capacity(data.len() / 2 + 64),
            );
            encoder.write_all(data).map_err(|e| failed("lz4", e))?;
            let mut out = encoder.finish().map_err(|e| malformed("lz4", e))?;
            if broken_lz4_header {
                set_lz4_header_checksum(&mut out, true);
            }
            Ok(out)
        }
        other => Err(DecompressError::UnknownCodec(other)),
    }
}

/// Block size of the xerial snappy stream [`compress`] writes (snappy-java's default).
const XERIAL_BLOCK_LEN: usize = 32 * 1024;

/// The LZ4 frame magic number, little-endian on the wire.
const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// Rewrites the header checksum byte of the LZ4 frame at the start of `frame`: the standard
/// one (`broken` false: xxHash32 of the frame descriptor, FLG to the end of the optional
/// fields) or the one Kafka's magic 0 writers produced (`broken`: the hash starts at the
/// frame's magic number, KIP-57). Returns false, changing nothing, if `frame` does not start
/// with a whole LZ4 frame header.
pub fn set_lz4_header_checksum(frame: &mut [u8], broken: bool) -> bool {
    if frame.len() < 7 || frame[..4] != LZ4_FRAME_MAGIC {
        return false;
    }
    let flags = frame[4];
    let mut checksum_at = 6;
    if flags & 0x08 != 0 {
        checksum_at += 8; // content size
    }
    if flags & 0x01 != 0 {
        checksum_at += 4; // dictionary id
    }
    if frame.len() <= checksum_at {
        return false;
    }
    let hashed = if broken {
        &frame[..checksum_at]
    } else {
        &frame[4..checksum_at]
    };
    frame[checksum_at] = (xxhash32(hashed, 0) >> 8) as u8;
    true
}

/// xxHash32 (the LZ4 frame format's header checksum), for the few bytes of a frame header.
fn xxhash32(data: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let round = |acc: u32, lane: u32| {
        acc.wrapping_add(lane.wrapping_mul(P2))
            .rotate_left(13)
            .wrapping_mul(P1)
    };
    let mut rest = data;
    let mut hash = if data.len() >= 16 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 16 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, word(&rest[i * 4..]));
            }
            rest = &rest[16..];
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    hash = hash.wrapping_add(data.len() as u32);
    while rest.len() >= 4 {
        hash = hash
            .wrapping_add(word(rest).wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
        rest = &rest[4..];
    }
    for &byte in rest {
        hash = hash
            .wrapping_add(u32::from(byte).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    hash ^= hash >> 15;
    hash = hash.wrapping_mul(P2);
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(P3);
    hash ^ (hash >> 16)
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
    fn own_compressor_round_trips_through_the_decoder() {
        let data = sample();
        for codec in 0..=3 {
            let compressed = super::compress(codec, &data, false).unwrap();
            assert_eq!(
                decompress(codec, &compressed, usize::MAX).unwrap(),
                data,
                "codec {codec}"
            );
        }
        assert!(super::compress(4, &data, false).is_err());
    }

    #[test]
    fn lz4_header_checksums_standard_and_kip_57() {
        // lz4_flex writes (and checks) the standard checksum: recomputing it changes nothing.
        let standard = compress(3, b"hello hello hello hello");
        let mut copy = standard.clone();
        assert!(set_lz4_header_checksum(&mut copy, false));
        assert_eq!(copy, standard);
        // The magic 0 variant differs, fails the standard check, and converts back.
        let mut broken = standard.clone();
        assert!(set_lz4_header_checksum(&mut broken, true));
        assert_ne!(broken, standard);
        assert!(decompress(3, &broken, usize::MAX).is_err());
        assert!(set_lz4_header_checksum(&mut broken, false));
        assert_eq!(broken, standard);
        assert!(!set_lz4_header_checksum(&mut [0u8; 3], false));
    }

    #[test]
    fn xxhash32_known_values() {
        // Reference values of the xxHash32 specification's test suite.
        assert_eq!(xxhash32(b"", 0), 0x02cc_5d05);
        assert_eq!(xxhash32(b"a", 0), 0x550d_7456);
        assert_eq!(xxhash32(b"abc", 0), 0x32d1_53ff);
        assert_eq!(
            xxhash32(b"Nobody inspects the spammish repetition", 0),
            0xe229_3b2f
        );
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
