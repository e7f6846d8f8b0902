//! The service scheduler's harness for the tests that run `strom scheduler run`: a minimal
//! HTTP client for its API, a [`Service`] (options, state directory, a port range of its own,
//! the scheduler process) whose drop kills the scheduler and every broker it started, and
//! helpers reading the engine's ledger and `/proc`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::wait_until;

/// A minimal HTTP/1.1 client: `(status, JSON body)`.
pub fn http(address: &str, method: &str, path: &str) -> (u16, Value) {
    http_with(address, method, path, "")
}

/// [`http`] with extra header lines (each ending in `\r\n`).
pub fn http_with(address: &str, method: &str, path: &str, headers: &str) -> (u16, Value) {
    http_request(address, method, path, headers, "")
}

/// A GET whose answer is text: `(status, headers, body)`.
pub fn http_text(address: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).expect("the API accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (status, head.to_string(), body.to_string())
}

/// [`http`] with extra header lines and a body.
pub fn http_request(
    address: &str,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(address).expect("the API accepts connections");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a response");
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

pub struct Service {
    pub dir: PathBuf,
    pub options: PathBuf,
    pub ports: String,
    pub scheduler: Option<Child>,
    /// More arguments for `strom scheduler run` (`--zookeeper …`).
    pub extra_args: Vec<String>,
    /// Run the services of this file (`--services`) instead of `--service kafka --options`.
    pub services_file: Option<PathBuf>,
    /// Brokers die with the scheduler (for tests that never restart it: nothing outlives a
    /// test killed by a timeout).
    pub die_with_scheduler: bool,
    /// Run the service's embedded ZooKeeper when no other is configured (the scheduler's
    /// default; off here so that tests about other things run single-node brokers quickly).
    pub embedded_zookeeper: bool,
    _ports_lock: std::fs::File,
}

/// 90 ports below the ephemeral range that no other test process of this machine uses: one of
/// 130 slots from 20000, held with `flock` for the test's life.
fn reserve_ports() -> (std::fs::File, u32) {
    use std::os::fd::AsRawFd;
    for attempt in 0..130 {
        let slot = (std::process::id() + attempt) % 130;
        let path = std::env::temp_dir().join(format!("strom-scheduler-test-ports-{slot}.lock"));
        let file = std::fs::File::create(path).unwrap();
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return (file, 20_000 + slot * 90);
        }
    }
    panic!("no free port slot");
}

impl Service {
    pub fn new(dir: &Path, options: &str) -> Service {
        let options_path = dir.join("options.json");
        std::fs::write(&options_path, options).unwrap();
        let (ports_lock, base) = reserve_ports();
        Service {
            dir: dir.to_path_buf(),
            options: options_path,
            ports: format!("{base}-{}", base + 89),
            scheduler: None,
            die_with_scheduler: false,
            embedded_zookeeper: false,
            extra_args: Vec::new(),
            services_file: None,
            _ports_lock: ports_lock,
        }
    }

    pub fn start(&mut self) -> String {
        self.start_with_token("")
    }

    pub fn start_with_token(&mut self, token: &str) -> String {
        self.start_with_env(&[("STROM_SCHEDULER_TOKEN", token)])
    }

    pub fn start_with_env(&mut self, env: &[(&str, &str)]) -> String {
        let _ = std::fs::remove_file(self.dir.join("state/api-address"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_strom"));
        command.envs(env.iter().copied()).args(["scheduler", "run"]);
        match &self.services_file {
            Some(file) => command.arg("--services").arg(file),
            None => command
                .args(["--service", "kafka", "--options"])
                .arg(&self.options),
        };
        let child = command
            .arg("--state-dir")
            .arg(self.dir.join("state"))
            .args([
                "--api",
                "127.0.0.1:0",
                "--agents",
                "3",
                "--ports",
                &self.ports,
            ])
            .args(["--check-interval-max-ms", "300"])
            .arg(format!("--embedded-zookeeper={}", self.embedded_zookeeper))
            .args(&self.extra_args)
            .args(
                self.die_with_scheduler
                    .then_some("--tasks-die-with-scheduler"),
            )
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.dir.join("scheduler.log")).unwrap())
            .spawn()
            .expect("the scheduler starts");
        self.scheduler = Some(child);
        let file = self.dir.join("state/api-address");
        wait_until("api-address", Duration::from_secs(20), || {
            std::fs::read_to_string(&file).is_ok_and(|a| !a.is_empty())
        });
        std::fs::read_to_string(file).unwrap()
    }

    pub fn kill_scheduler(&mut self) {
        if let Some(mut child) = self.scheduler.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Broker pids by task name, from the local engine's ledger.
    pub fn pids(&self) -> Vec<(String, u32)> {
        let Ok(bytes) = std::fs::read(self.dir.join("state/engine/engine.json")) else {
            return Vec::new();
        };
        let ledger: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut pids = Vec::new();
        if let Some(tasks) = ledger["tasks"].as_object() {
            for task in tasks.values() {
                if let (Some(name), Some(pid)) =
                    (task["info"]["name"].as_str(), task["pid"].as_u64())
                {
                    if task["state"] == "TASK_RUNNING" {
                        pids.push((name.to_string(), pid as u32));
                    }
                }
            }
        }
        pids
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.pids()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p)
    }
}

/// `strom broker` processes running in a sandbox under `dir`: (pid, sandbox).
pub fn broker_processes(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(root) = std::fs::canonicalize(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let (Ok(cwd), Ok(cmdline)) = (
            std::fs::read_link(entry.path().join("cwd")),
            std::fs::read(entry.path().join("cmdline")),
        ) else {
            continue;
        };
        let is_broker = cmdline.windows(8).any(|w| w == b"\0broker\0");
        if is_broker && cwd.starts_with(&root) {
            found.push((pid, cwd));
        }
    }
    found
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill_scheduler();
        for (_, pid) in self.pids() {
            // SAFETY: signalling the process groups of brokers this test's scheduler started.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        for (pid, _) in broker_processes(&self.dir) {
            // SAFETY: as above (a broker the engine lost track of).
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
    }
}

pub fn task_id(api: &str, pod: &str) -> String {
    let (status, info) = http(api, "GET", &format!("/v1/pod/{pod}/info"));
    assert_eq!(status, 200, "{info}");
    info[0]["info"]["task_id"]
        .as_str()
        .expect("a task id")
        .to_string()
}

pub fn step_statuses(plan: &Value) -> Vec<String> {
    plan["phases"][0]["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| s["status"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}
