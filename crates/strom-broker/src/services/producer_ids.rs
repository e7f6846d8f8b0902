//! Producer ids for idempotent producers, unique across restarts.
//!
//! Ids are handed out from blocks of [`BLOCK_SIZE`]. Before the first id of a block is used,
//! the start of the *next* block is written to `<first log dir>/producer-id-block` (write to a
//! temporary file, fsync, rename), so a restart — clean or not — never reuses an id. At most a
//! block of ids is skipped per restart, as with Kafka's `AllocateProducerIds`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use strom_log::checkpoint::write_atomically;

/// Ids reserved per write of the block file.
pub const BLOCK_SIZE: i64 = 1000;

const FILE_NAME: &str = "producer-id-block";

/// Hands out producer ids.
pub struct ProducerIdAllocator {
    path: PathBuf,
    /// (next id to hand out, first id not yet reserved on disk).
    /// Invariant: next <= reserved_end.
    state: Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    /// Reads the persisted block start in `dir` (0 when absent).
    pub fn open(dir: &Path) -> std::io::Result<ProducerIdAllocator> {
        let path = dir.join(FILE_NAME);
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<i64>().map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: not a producer id: {e}", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(ProducerIdAllocator {
            path,
            state: Mutex::new((start, start)),
        })
    }

    /// The next unused producer id.
    pub fn next(&self) -> std::io::Result<i64> {
        let mut state = self.state.lock().unwrap();
        if state.0 >= state.1 {
            let reserved_end = state.1 + BLOCK_SIZE;
            write_atomically(&self.path, reserved_end.to_string().as_bytes())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            state.1 = reserved_end;
        }
        let id = state.0;
        state.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProducerIdAllocator::open(dir.path()).unwrap();
        let a: Vec<i64> = (0..5).map(|_| first.next().unwrap()).collect();
        assert_eq!(a, vec![0, 1, 2, 3, 4]);
        drop(first);
        let second = ProducerIdAllocator::open(dir.path()).unwrap();
        let b = second.next().unwrap();
        assert_eq!(
            b, BLOCK_SIZE,
            "a reopened allocator starts at the next block"
        );
    }
}
