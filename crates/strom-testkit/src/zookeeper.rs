//! A real ZooKeeper server for the tests that need one: Debian's `zookeeper` package (3.8),
//! which `./scripts/test` installs, run standalone with `java` from the package's jars, one
//! server per [`ZooKeeper`] value, each in its own temporary directory (configuration, data and
//! log), on its own loopback port. Several can run at once, in one test process or in several.
//!
//! This module uses only `std`, `libc` and `tempfile`. [`ZooKeeper::start_with_tick_ms`] runs
//! a server with a shorter tick, for tests of session expiry: ZooKeeper grants session
//! timeouts between 2 and 20 ticks.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server's classes as the package's own scripts find them (`CLASSPATH` in
/// /etc/zookeeper/conf/environment: the jar's manifest names its dependencies in
/// /usr/share/java), plus slf4j's simple binding, from libslf4j-java, a dependency of the
/// package: it writes the server's log to stderr, which goes to the log file. Without a binding
/// slf4j discards every line.
const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";

/// The main class the package's scripts start (`ZOOMAIN`); with no ensemble in the
/// configuration it runs a standalone server.
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// How long a server may take to answer `ruok` after its process starts.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// ZooKeeper's default `tickTime`: sessions may last 4–40 s.
const DEFAULT_TICK_MS: u32 = 2000;

/// How many ports are tried before giving up, when the one picked was taken in between.
const PORT_ATTEMPTS: usize = 5;

/// A standalone ZooKeeper server, answering on `127.0.0.1:port`. Dropping it kills the JVM
/// and waits for it; the temporary directory goes with it.
///
/// The process also gets SIGKILL when the thread that started it ends (`PR_SET_PDEATHSIG`), so
/// a test killed by its timeout leaves no JVM behind: keep the value on the thread that called
/// [`ZooKeeper::start`].
pub struct ZooKeeper {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ZooKeeper {
    /// Starts a server and returns once it answers `ruok` with `imok` and `conf` shows that the
    /// server answering is this one (its data directory). Its client port is picked free by
    /// binding port 0 and is handed to ZooKeeper, which cannot bind port 0 itself; if another
    /// process takes the port in between, the server exits on the bind and the next attempt
    /// picks another. Panics with the server's log if it does not get ready within 30 s.
    pub fn start() -> ZooKeeper {
        ZooKeeper::start_with_tick_ms(DEFAULT_TICK_MS)
    }

    /// Like [`ZooKeeper::start`], with `tickTime` set to `tick_ms` (ZooKeeper's default is
    /// 2000): sessions may then last from 2 to 20 ticks.
    pub fn start_with_tick_ms(tick_ms: u32) -> ZooKeeper {
        for jar in CLASSPATH.split(':') {
            assert!(
                Path::new(jar).is_file(),
                "{jar} is missing: ./scripts/test installs ZooKeeper (apt-get install zookeeper)"
            );
        }
        let dir = tempfile::tempdir().expect("temp dir for ZooKeeper");
        let mut last_log = String::new();
        for attempt in 0..PORT_ATTEMPTS {
            let port = free_loopback_port();
            let data = dir.path().join(format!("data-{attempt}"));
            std::fs::create_dir_all(&data).unwrap();
            let config = dir.path().join(format!("zoo-{attempt}.cfg"));
            std::fs::write(&config, zoo_cfg(&data, port, tick_ms)).unwrap();
            let log = dir.path().join(format!("zookeeper-{attempt}.log"));
            let mut child = spawn_server(&config, &log);
            let outcome = wait_ready(&mut child, port, &data, &log);
            if outcome.is_ok() {
                return ZooKeeper {
                    child,
                    port,
                    log,
                    _dir: dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
            if let Err(Exit::Failed(reason)) = outcome {
                panic!("ZooKeeper did not start: {reason}:\n{last_log}");
            }
        }
        panic!("ZooKeeper found no free port in {PORT_ATTEMPTS} attempts; last log:\n{last_log}")
    }

    /// The client port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JVM's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `127.0.0.1:port`, the connect string for a client.
    pub fn connect_string(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends the four-letter command `word` (`ruok`, `srvr` or `conf`, the ones this server
    /// allows) and returns the answer; `None` if the server did not answer within 5 s.
    pub fn four_letter_word(&self, word: &str) -> Option<String> {
        four_letter_word(self.port, word)
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls until the server on `port` answers as itself (its data directory is `data`), the
/// process exits, or the time is up.
fn wait_ready(child: &mut Child, port: u16, data: &Path, log: &Path) -> Result<(), Exit> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(if text.contains("Address already in use") {
                Exit::PortTaken
            } else {
                Exit::Failed(format!("the JVM exited ({status})"))
            });
        }
        // Another server that took the port could answer `imok` too (this one then exits on
        // its bind): `conf` names the data directory, which is this server's own.
        if four_letter_word(port, "ruok").as_deref() == Some("imok")
            && four_letter_word(port, "conf")
                .is_some_and(|conf| conf.contains(data.to_str().unwrap()))
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Exit::Failed(format!(
                "no `imok` from 127.0.0.1:{port} within {} s",
                READY_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Why a server did not get ready.
enum Exit {
    /// Another process bound the client port first.
    PortTaken,
    /// Anything else, said in words.
    Failed(String),
}

/// The configuration of a standalone server: data in `data`, clients on 127.0.0.1:`port`
/// only, no admin HTTP server (it would want port 8080), and the four-letter commands the
/// harness uses. Sessions may last from 2 to 20 ticks of `tick_ms`.
fn zoo_cfg(data: &Path, port: u16, tick_ms: u32) -> String {
    format!(
        "tickTime={tick_ms}\n\
         dataDir={data}\n\
         clientPort={port}\n\
         clientPortAddress=127.0.0.1\n\
         admin.enableServer=false\n\
         4lw.commands.whitelist=ruok,srvr,conf\n",
        data = data.display(),
    )
}

/// Starts the JVM on `config`, stdout and stderr to `log`. The heap is capped at 256 MB and the
/// serial collector keeps the thread count down: tests run two at a time on small machines.
fn spawn_server(config: &Path, log: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("ZooKeeper log file");
    let mut command = Command::new("java");
    command
        .args([
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:-UsePerfData",
            "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-cp",
            CLASSPATH,
            MAIN_CLASS,
        ])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("`java` could not be run ({e}): ./scripts/test installs it"))
}

/// A port that was free on 127.0.0.1 a moment ago.
fn free_loopback_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Sends a four-letter command to 127.0.0.1:`port` and reads the answer to the end (the server
/// closes the connection after it); `None` on any failure or after 5 s.
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}
