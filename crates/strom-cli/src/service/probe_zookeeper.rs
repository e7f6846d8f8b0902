//! `strom service probe-zookeeper`: the readiness and health check of the service's embedded
//! ZooKeeper task. Ready means the server answers the four-letter command `ruok` with `imok`
//! and `srvr` reports a serving mode (standalone or leader/follower): a server that accepts
//! connections but has not loaded its database answers `srvr` with an error instead. Exit 0
//! ready, 1 not ready (with the reason on stderr).
//!
//! A server of an ensemble (`--ensemble`, `--index`) cannot serve alone, so readiness there
//! is "listening" for the servers launched before a majority exists, and a majority serving
//! with one leader for the rest (see [`ensemble_ready`]); `--listening` is its health check.

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
    /// Only check that the server runs and listens (`ruok`): an ensemble server's health,
    /// which must not fail while the ensemble has no quorum.
    #[arg(long)]
    pub listening: bool,
    /// The ensemble's servers (`host:port,…`, in myid order): readiness of server `--index`
    /// of an ensemble (see the module documentation).
    #[arg(long, value_name = "HOST:PORT,...", requires = "index")]
    pub ensemble: Option<String>,
    /// This server's index in `--ensemble` (myid − 1).
    #[arg(long)]
    pub index: Option<usize>,
}

/// Runs the probe.
pub fn run(args: &ProbeZooKeeperArgs) -> anyhow::Result<()> {
    let own = format!("{}:{}", args.host, args.port);
    let ruok = four_letter_word(&own, args.timeout_ms, "ruok")?;
    if ruok != "imok" {
        bail!("ruok answered {ruok:?}, not \"imok\"");
    }
    if args.listening {
        return Ok(());
    }
    if let (Some(ensemble), Some(index)) = (&args.ensemble, args.index) {
        return ensemble_ready(ensemble, index, args.timeout_ms);
    }
    let srvr = four_letter_word(&own, args.timeout_ms, "srvr")?;
    if mode(&srvr).is_none() {
        bail!("srvr reports no serving mode: {:?}", srvr.trim());
    }
    Ok(())
}

/// The `Mode:` line of a `srvr` answer (`standalone`, `leader`, `follower`, `observer`); none
/// from a server that does not serve ("not currently serving requests").
fn mode(srvr: &str) -> Option<&str> {
    srvr.lines()
        .find_map(|line| line.strip_prefix("Mode: "))
        .map(str::trim)
}

/// An ensemble server is ready once it listens (checked before) if the servers launched up to
/// it (a serial deploy launches them in index order) cannot form a majority yet; the server
/// whose launch makes a majority, and every later one, only once a majority of the ensemble
/// answers `srvr` as leader or follower with exactly one leader.
fn ensemble_ready(ensemble: &str, index: usize, timeout_ms: u64) -> anyhow::Result<()> {
    let servers: Vec<&str> = ensemble.split(',').filter(|s| !s.is_empty()).collect();
    if index >= servers.len() {
        bail!("--index {index} is not a server of --ensemble {ensemble}");
    }
    let majority = servers.len() / 2 + 1;
    if index + 1 < majority {
        return Ok(());
    }
    let mut serving = 0;
    let mut leaders = Vec::new();
    let mut seen = Vec::new();
    // Each server gets a share of the check's time, so one that hangs cannot time the whole
    // check out.
    let each_ms = (timeout_ms / servers.len() as u64).max(100);
    for server in &servers {
        let answer = four_letter_word(server, each_ms, "srvr").unwrap_or_default();
        let mode = mode(&answer).unwrap_or("not serving").to_string();
        if mode == "leader" {
            leaders.push(*server);
        }
        if mode == "leader" || mode == "follower" {
            serving += 1;
        }
        seen.push(format!("{server} {mode}"));
    }
    if serving < majority || leaders.len() != 1 {
        bail!(
            "no quorum yet: {serving} of {} serving (a majority is {majority}), {} leader(s): {}",
            servers.len(),
            leaders.len(),
            seen.join(", ")
        );
    }
    Ok(())
}

fn four_letter_word(address: &str, timeout_ms: u64, word: &str) -> anyhow::Result<String> {
    let timeout = Duration::from_millis(timeout_ms.max(1));
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
