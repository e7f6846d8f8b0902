//! `strom service probe-zookeeper`: the readiness and health check of the service's embedded
//! ZooKeeper task. Ready means the server answers the four-letter command `ruok` with `imok`
//! and `srvr` reports a serving mode (standalone or leader/follower): a server that accepts
//! connections but has not loaded its database answers `srvr` with an error instead. Exit 0
//! ready, 1 not ready (with the reason on stderr).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context};

/// Arguments of `strom service probe-zookeeper`.
#[derive(Debug, clap::Args)]
pub struct ProbeZooKeeperArgs {
    /// The server's client port.
    #[arg(long)]
    pub port: u16,
    /// The server's host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Connect and read timeout, milliseconds.
    #[arg(long, default_value_t = 5_000)]
    pub timeout_ms: u64,
}

/// Runs the probe.
pub fn run(args: &ProbeZooKeeperArgs) -> anyhow::Result<()> {
    let ruok = four_letter_word(args, "ruok")?;
    if ruok != "imok" {
        bail!("ruok answered {ruok:?}, not \"imok\"");
    }
    let srvr = four_letter_word(args, "srvr")?;
    if !srvr.lines().any(|line| line.starts_with("Mode: ")) {
        bail!("srvr reports no serving mode: {:?}", srvr.trim());
    }
    Ok(())
}

fn four_letter_word(args: &ProbeZooKeeperArgs, word: &str) -> anyhow::Result<String> {
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
    stream.write_all(word.as_bytes())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .with_context(|| format!("no answer to {word} from {address}"))?;
    Ok(answer)
}
