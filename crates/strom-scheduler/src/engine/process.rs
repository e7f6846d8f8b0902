//! OS processes for the local engine: spawning a command in its own session (so it and its
//! children form one process group the engine can signal, and a scheduler's death does not
//! reach it through the terminal or the group), telling whether a pid is still the process the
//! engine started (`/proc/<pid>/stat` start time, so a recycled pid is not mistaken for it), and
//! signalling a whole group.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Spawns `sh -c <cmd>` in `cwd` with `env` added to this process's environment, output
/// appended to `stdout`/`stderr`, as the leader of a new session. With `die_with_parent`, the
/// kernel kills it when the spawning thread exits (`PR_SET_PDEATHSIG`; tests only).
pub(super) fn spawn(
    cmd: &str,
    env: &BTreeMap<String, String>,
    cwd: &Path,
    stdout: &Path,
    stderr: &Path,
    die_with_parent: bool,
) -> io::Result<Child> {
    let append = |path: &Path| File::options().create(true).append(true).open(path);
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(cmd)
        .current_dir(cwd)
        .envs(env)
        .stdin(Stdio::null())
        .stdout(append(stdout)?)
        .stderr(append(stderr)?);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe calls.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if die_with_parent
                && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// The start time (clock ticks since boot) of live process `pid`; `None` when there is no such
/// process or it is a zombie.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain spaces: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3 of stat), fields[19] the start time (field 22).
    if fields.first() == Some(&"Z") || fields.first() == Some(&"X") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is still the process that started at `ticks`.
pub(crate) fn alive(pid: u32, ticks: Option<u64>) -> bool {
    match (start_ticks(pid), ticks) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Sends `signal` to the process group `pgid` (the task's session leader's pid).
pub(super) fn signal_group(pgid: u32, signal: libc::c_int) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return;
    }
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// The pid of a live session leader whose working directory is `dir`, if any (a task spawned
/// just before its engine died, before the pid was recorded).
pub(super) fn session_leader_in(dir: &Path) -> Option<u32> {
    let dir = std::fs::canonicalize(dir).ok()?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cwd) = std::fs::read_link(entry.path().join("cwd")) else {
            continue;
        };
        // SAFETY: getsid(2) only reads the session id of a pid.
        let session = unsafe { libc::getsid(pid as libc::pid_t) };
        if cwd == dir && session == pid as libc::pid_t && start_ticks(pid).is_some() {
            return Some(pid);
        }
    }
    None
}
