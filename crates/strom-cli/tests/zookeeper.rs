//! The test harness's real ZooKeeper (`strom_testkit::zookeeper`, Debian's `zookeeper` package):
//! servers start side by side on their own ports, answer, and are gone once dropped or once
//! the thread that started them ends. Only that module is included, not the broker harness.

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use strom_testkit::zookeeper::{four_letter_word, ZooKeeper};

/// Polls `gone` every 50 ms for up to 10 s.
fn eventually(what: &str, mut gone: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process that has exited and been reaped, or is a zombie, no longer runs.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit_once(") ").map(|(_, rest)| rest.as_bytes()[0]);
            state != Some(b'Z')
        })
        .unwrap_or(false)
}

#[test]
fn two_servers_at_once_answer_and_stop_on_drop() {
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let server = ZooKeeper::start();
                // Both servers are up at this point.
                barrier.wait();
                assert_eq!(
                    server.four_letter_word("ruok").as_deref(),
                    Some("imok"),
                    "{}",
                    server.log()
                );
                let srvr = server.four_letter_word("srvr").unwrap_or_default();
                assert!(srvr.contains("Zookeeper version: 3.8."), "{srvr}");
                assert!(srvr.contains("Mode: standalone"), "{srvr}");
                assert!(server.log().contains("binding to port"), "{}", server.log());
                barrier.wait();
                let (port, pid) = (server.port(), server.pid());
                assert!(running(pid));
                drop(server);
                (port, pid)
            })
        })
        .collect();
    let stopped: Vec<(u16, u32)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_ne!(stopped[0].0, stopped[1].0, "each server has its own port");
    for (port, pid) in stopped {
        assert!(!running(pid), "process {pid} still runs after drop");
        assert_eq!(
            four_letter_word(port, "ruok"),
            None,
            "port {port} still answers"
        );
    }
}

#[test]
fn a_server_dies_with_the_thread_that_started_it() {
    // A test killed by its timeout never drops its server: the kernel kills the JVM when the
    // thread that spawned it ends, which a forgotten value on an ended thread stands in for.
    let (port, pid) = std::thread::spawn(|| {
        let server = ZooKeeper::start();
        let answer = (server.port(), server.pid());
        std::mem::forget(server);
        answer
    })
    .join()
    .unwrap();
    eventually("the orphaned JVM to be killed", || !running(pid));
    assert_eq!(four_letter_word(port, "ruok"), None);
    // Reap it: its Child was forgotten.
    // SAFETY: waitpid on our own exited child; a null status pointer is allowed.
    unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
}
