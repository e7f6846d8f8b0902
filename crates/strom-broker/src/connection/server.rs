//! Listeners and connections: Kafka framing, pipelining, and response order.
//!
//! A connection has a reader and a writer. The reader takes one size-prefixed frame at a
//! time, refuses frames larger than `socket.request.max.bytes` (the connection is closed, as
//! Kafka does), and hands the frame to [`crate::connection::dispatch`]. Dispatch runs the order-sensitive
//! part of a request inline — a produce's append happens here, so two pipelined produces to one
//! partition are appended in the order they were sent — and returns a [`Reply`]: a response
//! that is ready, a task that will produce it (waiting for a sync or a long poll), or nothing
//! (`acks=0`). The writer sends replies strictly in request order, batching whatever is ready
//! into one write. At most [`MAX_IN_FLIGHT`] requests per connection are outstanding; the reader
//! stops reading until the writer catches up, which is the connection's back-pressure.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::protocol::frame::{Frame, Part, Reply};
use crate::services::Services;

/// Requests a connection may have outstanding before the reader pauses.
pub const MAX_IN_FLIGHT: usize = 64;

/// Accepts connections on every listener until `shutdown` becomes true.
pub async fn serve(
    services: Arc<Services>,
    listeners: Vec<TcpListener>,
    shutdown: watch::Receiver<bool>,
) {
    let mut accept_tasks = Vec::new();
    for listener in listeners {
        let services = services.clone();
        let mut shutdown = shutdown.clone();
        accept_tasks.push(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, peer)) => {
                            let _ = stream.set_nodelay(true);
                            let services = services.clone();
                            let shutdown = shutdown.clone();
                            connections.spawn(connection(services, stream, peer, shutdown));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        }
                    },
                    _ = shutdown.changed() => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
            // Give in-flight requests a moment to finish, then drop the rest.
            let drain = async { while connections.join_next().await.is_some() {} };
            if tokio::time::timeout(std::time::Duration::from_secs(5), drain)
                .await
                .is_err()
            {
                tracing::warn!(
                    open = connections.len(),
                    "connections still busy 5 s after shutdown began; closing them"
                );
                connections.abort_all();
            }
        }));
    }
    for task in accept_tasks {
        let _ = task.await;
    }
}

async fn connection(
    services: Arc<Services>,
    stream: TcpStream,
    peer: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) {
    services.metrics.connection_opened();
    // Kafka reports a member's host as `/` + its address.
    let client_host: Arc<str> = Arc::from(format!("/{}", peer.ip()));
    let (mut reader, writer) = stream.into_split();
    let (replies, pending) = mpsc::channel::<Reply>(MAX_IN_FLIGHT);
    let writer_task = tokio::spawn(write_replies(writer, pending));
    let max_frame = services.config.socket_request_max_bytes.max(1) as usize;
    loop {
        let mut size = [0u8; 4];
        tokio::select! {
            read = reader.read_exact(&mut size) => {
                if read.is_err() {
                    break;
                }
            }
            _ = shutdown.changed() => break,
        }
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > max_frame {
            tracing::warn!(%peer, size, max = max_frame, "closing connection: request frame size exceeds socket.request.max.bytes or is negative");
            break;
        }
        let Some(frame) = read_frame(&mut reader, size as usize).await else {
            break;
        };
        match crate::connection::dispatch::dispatch(&services, frame.freeze(), &client_host) {
            Ok(reply) => {
                if replies.send(reply).await.is_err() {
                    break;
                }
            }
            Err(refusal) => {
                tracing::warn!(%peer, "closing connection: {refusal}");
                break;
            }
        }
    }
    drop(replies);
    let _ = writer_task.await;
    services.metrics.connection_closed();
}

/// Reads a frame body of exactly `size` bytes into uninitialised capacity (no zeroing pass:
/// produce frames are large). `None` when the connection ends first.
async fn read_frame(reader: &mut tokio::net::tcp::OwnedReadHalf, size: usize) -> Option<BytesMut> {
    use bytes::BufMut;
    let mut frame = BytesMut::with_capacity(size);
    while frame.len() < size {
        let wanted = size - frame.len();
        // `limit` keeps the read inside this frame even when the allocation has spare room.
        match reader.read_buf(&mut (&mut frame).limit(wanted)).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
    Some(frame)
}

async fn write_replies(
    writer: tokio::net::tcp::OwnedWriteHalf,
    mut pending: mpsc::Receiver<Reply>,
) {
    let mut writer = BufWriter::with_capacity(256 * 1024, writer);
    while let Some(reply) = pending.recv().await {
        let frame = match reply {
            Reply::Ready(frame) => Frame::from_bytes(frame),
            Reply::Later(task) => match finish(&mut writer, task).await {
                Some(frame) => Frame::from_bytes(frame),
                None => return,
            },
            Reply::LaterFrame(task) => match finish(&mut writer, task).await {
                Some(frame) => frame,
                None => return,
            },
            Reply::Nothing => continue,
        };
        for part in &frame.parts {
            let sent = match part {
                Part::Bytes(bytes) => writer.write_all(bytes).await,
                Part::File(slice) => match writer.flush().await {
                    Ok(()) => {
                        crate::protocol::frame::send_file(writer.get_ref().as_ref(), slice).await
                    }
                    Err(e) => Err(e),
                },
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "writing a response failed; closing the connection");
                return;
            }
        }
        // Flush when nothing else is ready, so pipelined responses share one write.
        if pending.is_empty() && writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.flush().await;
}

/// Waits for a reply that is still being worked on. Whatever is buffered is flushed first, so
/// it does not wait behind a produce waiting for its sync or a parked fetch. `None` closes the
/// connection.
async fn finish<T>(
    writer: &mut BufWriter<tokio::net::tcp::OwnedWriteHalf>,
    task: JoinHandle<T>,
) -> Option<T> {
    if !task.is_finished() && writer.flush().await.is_err() {
        return None;
    }
    match task.await {
        Ok(frame) => Some(frame),
        Err(e) => {
            tracing::error!(error = %e, "a request task failed; closing the connection");
            None
        }
    }
}
