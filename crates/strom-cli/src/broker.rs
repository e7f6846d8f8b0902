//! `strom broker`: load the configuration, then run a broker until SIGTERM or SIGINT.
//!
//! Everything the broker does lives in `strom-broker`; this module only reads the file,
//! reports a refused configuration before anything starts, and wires the shutdown signal.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tracing_subscriber::EnvFilter;

/// Arguments of `broker`.
#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// A `server.properties`-style configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Set one configuration key, KEY=VALUE, over the file; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Runs the broker; returns exit code 2 for a refused configuration, 1 for a failure while
/// starting or running.
pub fn run(args: BrokerArgs) -> ExitCode {
    let text = match args
        .config
        .as_ref()
        .map(std::fs::read_to_string)
        .transpose()
    {
        Ok(text) => text,
        Err(error) => {
            let path = args.config.as_ref().expect("an error implies a path");
            eprintln!(
                "error: could not read the configuration file {}: {error}",
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    let config = match strom_broker::BrokerConfig::load(text.as_deref(), &args.sets) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: refused configuration: {error}");
            return ExitCode::from(2);
        }
    };

    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let result: anyhow::Result<()> = runtime.block_on(async move {
        let handle = strom_broker::start(config)
            .await
            .context("the broker could not start")?;
        tracing::info!(addresses = ?handle.local_addrs, "broker started");
        handle
            .run_until(shutdown_signal())
            .await
            .context("the broker did not shut down cleanly")?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(error), _) | (_, Err(error)) => {
            // Without handlers the process would die on the signal without a clean shutdown;
            // say so and fall back to Ctrl-C only.
            tracing::warn!(%error, "could not install SIGTERM/SIGINT handlers; using Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = terminate.recv() => tracing::info!("received SIGTERM"),
        _ = interrupt.recv() => tracing::info!("received SIGINT"),
    }
}

/// The broker's open-file budget (segment files it keeps open, and so the partitions it can
/// host) is derived from the soft `RLIMIT_NOFILE`, whose common value of 1024 is small. Raise
/// the soft limit to the hard limit, as Kafka's documentation asks operators to do by hand.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let before = limit.rlim_cur;
        limit.rlim_cur = limit.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
            tracing::info!(
                from = before,
                to = limit.rlim_max,
                "raised the open-file limit"
            );
        }
    }
}
