//! Running the Python client scripts of `tests/python/` against a broker.

use std::path::PathBuf;
use std::process::Command;

/// The path of `tests/python/<script>`.
pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python")
        .join(name)
}

/// Runs `tests/python/<name> <args...>` with a time limit, prints its output, and fails the
/// test unless it exits 0 having printed `closing_line`.
pub fn run(name: &str, args: &[&str], closing_line: &str, limit: std::time::Duration) {
    let path = script(name);
    let out = Command::new("timeout")
        .arg(format!("{}", limit.as_secs().max(1)))
        .arg("python3")
        .arg(&path)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .output()
        .expect("timeout and python3 run (./scripts/test installs the clients)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}; 124 is the time limit):\n--- stdout ---\n{stdout}\n--- stderr (tail) ---\n{}",
        path.display(),
        out.status,
        tail(&stderr, 4000)
    );
    assert!(
        stdout.contains(closing_line),
        "{} {args:?} exited 0 without its closing line:\n{stdout}",
        path.display()
    );
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
