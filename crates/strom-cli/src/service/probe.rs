//! `strom service probe-broker`: the readiness and health check the shipped `svc.yml` names.
//! A broker is ready when it answers ApiVersions without an error and a Metadata request whose
//! broker list names its own id (a log line saying "started" is not enough: the SDK's Kafka
//! service learned that the hard way). Exit 0 ready, 1 not ready (with the reason on stderr).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, MetadataRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// Arguments of `strom service probe-broker`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    /// The broker id the broker must report for itself.
    #[arg(long)]
    pub id: i32,
    /// The broker's port.
    #[arg(long)]
    pub port: u16,
    /// The broker's host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Connect and read timeout, milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub timeout_ms: u64,
}

/// Runs the probe.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let address = format!("{}:{}", args.host, args.port);
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    let socket = std::net::ToSocketAddrs::to_socket_addrs(&address)
        .with_context(|| format!("cannot resolve {address}"))?
        .next()
        .with_context(|| format!("{address} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&socket, timeout)
        .with_context(|| format!("cannot connect to {address}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let versions: kafka_protocol::messages::ApiVersionsResponse =
        exchange(&mut stream, 1, 0, &ApiVersionsRequest::default())?;
    if versions.error_code != 0 {
        bail!("ApiVersions answered error code {}", versions.error_code);
    }
    let mut metadata_request = MetadataRequest::default();
    metadata_request.topics = Some(Vec::new());
    let metadata: kafka_protocol::messages::MetadataResponse =
        exchange(&mut stream, 2, 1, &metadata_request)?;
    let ids: Vec<i32> = metadata.brokers.iter().map(|b| b.node_id.0).collect();
    if !ids.contains(&args.id) {
        bail!(
            "Metadata from {address} names brokers {ids:?}, not broker {}",
            args.id
        );
    }
    Ok(())
}

fn exchange<R: Request>(
    stream: &mut TcpStream,
    correlation_id: i32,
    version: i16,
    request: &R,
) -> anyhow::Result<R::Response> {
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = Some(StrBytes::from_static_str("strom-probe"));
    let mut frame = BytesMut::new();
    frame.put_i32(0);
    header.encode(&mut frame, R::header_version(version))?;
    request.encode(&mut frame, version)?;
    let length = i32::try_from(frame.len() - 4)?;
    frame[0..4].copy_from_slice(&length.to_be_bytes());
    stream.write_all(&frame).context("cannot send")?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).context("no response")?;
    let size = usize::try_from(i32::from_be_bytes(size)).context("negative frame size")?;
    if size > 16 << 20 {
        bail!("response frame of {size} bytes is too large");
    }
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).context("truncated response")?;
    let mut body = Bytes::from(body);
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    let header = ResponseHeader::decode(&mut body, header_version)?;
    if header.correlation_id != correlation_id {
        bail!("response for correlation id {}", header.correlation_id);
    }
    R::Response::decode(&mut body, version)
}
