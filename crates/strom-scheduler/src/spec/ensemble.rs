//! The embedded ZooKeeper's shape: one standalone server (`zookeeper.count` 1, the default) or
//! an ensemble of 3 or 5, one server per virtual agent. Turns the scheduler environment's
//! inputs into what `svc.yml` and `zoo.cfg.mustache` render from. Pure.
//!
//! Every server's ports are fixed before anything launches, because ZooKeeper's static
//! configuration needs them all at once: each server's zoo.cfg lists every `server.N` line and
//! every broker's `zookeeper.connect` every client port. Server `i` (myid `i + 1`) asks for
//! client port `ZOOKEEPER_PORT + i × ZOOKEEPER_PORT_STRIDE` and the next two for quorum and
//! election; with the stride equal to one virtual agent's port span, those ports exist on
//! agent `i` only, so the engine reserves them there and the servers spread one per agent
//! (the pod's `[["hostname","MAX_PER","1"]]` says the same). Not owned here: choosing the port
//! range and agents (`strom scheduler run`), readiness (`strom service probe-zookeeper`).
//!
//! Inputs (set by `strom scheduler run` when it embeds ZooKeeper): `EMBEDDED_ZOOKEEPER`,
//! `ZOOKEEPER_PORT`, `ZOOKEEPER_PORT_STRIDE`, `ZOOKEEPER_AGENTS`, `ZOOKEEPER_HOST`,
//! `ZOOKEEPER_CHROOT`; the option `zookeeper.count` (`ZOOKEEPER_COUNT`). Outputs:
//! `ZOOKEEPER_ENSEMBLE` (set for more than one server), `ZOOKEEPER_QUORUM_PORT`,
//! `ZOOKEEPER_ELECTION_PORT`, `ZOOKEEPER_SERVERS` (the `server.N` lines, `\n`-escaped for a
//! double-quoted YAML scalar), `ZOOKEEPER_CONNECT` and the brokers' `KAFKA_ZOOKEEPER_URI`.

use std::collections::BTreeMap;

use crate::spec::SpecError;

/// The placement rule of the ZooKeeper pod: one server per agent, so that losing an agent
/// loses one server, never a quorum.
pub const PLACEMENT: &str = r#"[["hostname","MAX_PER","1"]]"#;

fn invalid(count: &str, reason: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        key: "zookeeper.count".into(),
        reason: format!("{count}: {}", reason.into()),
    }
}

fn number<T: std::str::FromStr>(env: &BTreeMap<String, String>, name: &str) -> Option<T> {
    env.get(name).and_then(|v| v.trim().parse().ok())
}

/// Checks `zookeeper.count` and, when ZooKeeper is embedded, derives the ensemble's variables.
pub fn apply(env: &mut BTreeMap<String, String>) -> Result<(), SpecError> {
    let text = env
        .get("ZOOKEEPER_COUNT")
        .cloned()
        .unwrap_or_else(|| "1".into());
    let count: u32 = match text.trim().parse() {
        Ok(n @ (1 | 3 | 5)) => n,
        Ok(n) if n % 2 == 0 => {
            return Err(invalid(
                &text,
                "an even number of servers tolerates no more failures than one fewer \
                 (a majority of 4 is 3, as of 3 is 2); use 1, 3 or 5",
            ))
        }
        _ => return Err(invalid(&text, "the ensemble has 1, 3 or 5 servers")),
    };
    if env
        .get("EMBEDDED_ZOOKEEPER")
        .is_none_or(|v| v.is_empty() || v == "false")
    {
        return Ok(());
    }
    // Ports as u16 (anything else is unset), so the arithmetic below cannot overflow.
    let port = u32::from(number::<u16>(env, "ZOOKEEPER_PORT").unwrap_or(0));
    let stride = if count == 1 {
        0
    } else {
        u32::from(number::<u16>(env, "ZOOKEEPER_PORT_STRIDE").unwrap_or(0))
    };
    let agents: u32 = number(env, "ZOOKEEPER_AGENTS").unwrap_or(1);
    if count > agents {
        return Err(invalid(
            &text,
            format!(
                "more servers than agents ({agents}) under the ZooKeeper pod's placement rule \
                 {PLACEMENT}: one server per agent (start with --agents {count} or more)"
            ),
        ));
    }
    if count > 1 && (port == 0 || stride < 3) {
        return Err(invalid(
            &text,
            "an ensemble needs a fixed first port and at least 3 ports per agent",
        ));
    }
    let last = port + 2 + (count - 1) * stride;
    if count > 1 && last > u32::from(u16::MAX) {
        return Err(invalid(&text, format!("port {last} does not exist")));
    }
    let host = env
        .get("ZOOKEEPER_HOST")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1".into());
    let client = |i: u32| port + i * stride;
    let connect: Vec<String> = (0..count)
        .map(|i| format!("{host}:{}", client(i)))
        .collect();
    let servers: Vec<String> = (0..count)
        .map(|i| {
            let base = client(i);
            format!("server.{}={host}:{}:{}", i + 1, base + 1, base + 2)
        })
        .collect();
    let chroot = env.get("ZOOKEEPER_CHROOT").cloned();
    let mut set = |name: &str, value: String| {
        env.insert(name.to_string(), value);
    };
    set("ZOOKEEPER_COUNT", count.to_string());
    set("ZOOKEEPER_PORT_STRIDE", stride.to_string());
    set("ZOOKEEPER_QUORUM_PORT", (port + 1).to_string());
    set("ZOOKEEPER_ELECTION_PORT", (port + 2).to_string());
    set("ZOOKEEPER_SERVERS", servers.join("\\n"));
    set("ZOOKEEPER_CONNECT", connect.join(","));
    if count > 1 {
        set("ZOOKEEPER_ENSEMBLE", "true".into());
    }
    if let Some(chroot) = chroot {
        set(
            "KAFKA_ZOOKEEPER_URI",
            format!("{}{chroot}", connect.join(",")),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(count: &str, agents: &str) -> BTreeMap<String, String> {
        [
            ("ZOOKEEPER_COUNT", count),
            ("EMBEDDED_ZOOKEEPER", "true"),
            ("ZOOKEEPER_PORT", "20000"),
            ("ZOOKEEPER_PORT_STRIDE", "100"),
            ("ZOOKEEPER_AGENTS", agents),
            ("ZOOKEEPER_CHROOT", "/dcos-service-kafka"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn three_servers_one_per_agent_range() {
        let mut env = env("3", "3");
        apply(&mut env).unwrap();
        assert_eq!(
            env["ZOOKEEPER_SERVERS"],
            "server.1=127.0.0.1:20001:20002\\nserver.2=127.0.0.1:20101:20102\\n\
             server.3=127.0.0.1:20201:20202"
        );
        assert_eq!(
            env["KAFKA_ZOOKEEPER_URI"],
            "127.0.0.1:20000,127.0.0.1:20100,127.0.0.1:20200/dcos-service-kafka"
        );
        assert_eq!(env["ZOOKEEPER_ENSEMBLE"], "true");
        assert_eq!(env["ZOOKEEPER_QUORUM_PORT"], "20001");
    }

    #[test]
    fn one_server_is_standalone_on_the_first_port() {
        let mut env = env("1", "1");
        apply(&mut env).unwrap();
        assert!(!env.contains_key("ZOOKEEPER_ENSEMBLE"));
        assert_eq!(env["ZOOKEEPER_PORT_STRIDE"], "0");
        assert_eq!(
            env["KAFKA_ZOOKEEPER_URI"],
            "127.0.0.1:20000/dcos-service-kafka"
        );
    }

    #[test]
    fn even_counts_and_more_servers_than_agents_are_refused_by_name() {
        for (count, agents, words) in [
            ("4", "5", "use 1, 3 or 5"),
            ("2", "3", "an even number"),
            ("7", "9", "1, 3 or 5"),
            ("x", "3", "1, 3 or 5"),
            ("5", "3", "more servers than agents (3)"),
        ] {
            let error = apply(&mut env(count, agents)).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("zookeeper.count: {count}: ")),
                "{error}"
            );
            assert!(error.contains(words), "{error}");
            if count == "5" {
                assert!(error.contains(PLACEMENT), "{error}");
            }
        }
        // Ports that are no ports are treated as unset: refused, never an overflow.
        let mut huge = env("3", "3");
        huge.insert("ZOOKEEPER_PORT".into(), "4294967295".into());
        assert!(apply(&mut huge).is_err());
        let mut high = env("5", "5");
        high.insert("ZOOKEEPER_PORT".into(), "65500".into());
        let error = apply(&mut high).unwrap_err().to_string();
        assert!(error.contains("does not exist"), "{error}");
        // Not embedded: the count is still checked, nothing is derived.
        let mut outside = env("3", "1");
        outside.remove("EMBEDDED_ZOOKEEPER");
        apply(&mut outside).unwrap();
        assert!(!outside.contains_key("ZOOKEEPER_SERVERS"));
    }
}
