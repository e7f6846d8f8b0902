//! What a handler answers ([`Reply`]), response frames made of memory and file ranges, and
//! sending file ranges with `sendfile`.
//!
//! Most responses are encoded into one buffer. A fetch response is mostly record data that is
//! already on disk in the wire format, so the fetch handler builds a [`Frame`]: its own fields
//! in small buffers and the records as [`FileSlice`]s, which the connection's writer hands to
//! the kernel with `sendfile(2)`. The data then goes from the page cache to the socket without
//! passing through the broker's memory.

use std::io;
use std::os::fd::AsRawFd;

use bytes::Bytes;
use strom_log::FileSlice;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// What the writer sends for one request, in order.
pub enum Reply {
    /// A complete response frame (size prefix included).
    Ready(Bytes),
    /// A task that yields the response frame.
    Later(JoinHandle<Bytes>),
    /// A task that yields a response frame with file ranges in it (a fetch).
    LaterFrame(JoinHandle<Frame>),
    /// No response (a produce with `acks=0`).
    Nothing,
}

/// A piece of a response frame.
#[derive(Debug, Clone)]
pub enum Part {
    /// Bytes in memory.
    Bytes(Bytes),
    /// A range of a segment file, sent with `sendfile`.
    File(FileSlice),
}

impl Part {
    /// Bytes this part puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            Part::Bytes(bytes) => bytes.len(),
            Part::File(slice) => slice.len,
        }
    }

    /// True if the part puts nothing on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A complete response frame (size prefix included) as a sequence of parts.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    /// The parts in wire order.
    pub parts: Vec<Part>,
}

impl Frame {
    /// A frame that is one buffer.
    pub fn from_bytes(bytes: Bytes) -> Frame {
        Frame {
            parts: vec![Part::Bytes(bytes)],
        }
    }

    /// Bytes the frame puts on the wire, size prefix included.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }

    /// True if the frame is empty (a response that failed to encode).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame in one buffer, file ranges read with `pread` (for tests and fallbacks).
    pub fn to_bytes(&self) -> io::Result<Bytes> {
        let mut out = Vec::with_capacity(self.len());
        for part in &self.parts {
            match part {
                Part::Bytes(bytes) => out.extend_from_slice(bytes),
                Part::File(slice) => out.extend_from_slice(&slice.read_to_bytes()?),
            }
        }
        Ok(out.into())
    }
}

/// Largest count one `sendfile` call takes on Linux.
const SENDFILE_MAX: usize = 0x7fff_f000;

/// Sends a file range to the socket with `sendfile(2)`, waiting for the socket to become
/// writable whenever its buffer is full. A file shorter than the range (it was truncated under
/// the fetch) is an error: the frame's size was promised, so the connection must be closed.
pub async fn send_file(stream: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let socket = stream.as_raw_fd();
    let file = slice.file.as_raw_fd();
    let end = slice.position + slice.len as u64;
    let mut offset = slice.position as libc::off_t;
    while (offset as u64) < end {
        let count = ((end - offset as u64) as usize).min(SENDFILE_MAX);
        let sent = stream
            .async_io(Interest::WRITABLE, || {
                // SAFETY: both descriptors are open for the duration of the call (the stream
                // and the `Arc<File>` are borrowed), and `offset` is a valid `off_t`.
                let n = unsafe { libc::sendfile(socket, file, &mut offset, count) };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(n as usize)
                }
            })
            .await?;
        if sent == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "segment file ended at {offset} before the end of the fetched range at {end}"
                ),
            ));
        }
    }
    Ok(())
}
