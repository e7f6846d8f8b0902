//! Secrets on the Mesos engine, as DC/OS delivered them: the scheduler never reads a secret's
//! value; each task of a LAUNCH_GROUP carries references (`Secret{type: REFERENCE,
//! reference{name: <path>}}`, `mesos.proto`) that the agent's secret resolver turns into values —
//! an env-key secret as an `environment.variables[]` entry of type SECRET, a file secret as a
//! read-only `container.volumes[]` entry whose source is the SECRET (Mesos's `volume/secret`
//! isolator writes it into the sandbox, on tmpfs). `__dcos_base64__` names go by reference like
//! any other; decoding them for a file is the resolver's part, as it was on DC/OS (the spec's
//! check keeps them out of env vars).
//!
//! The namespace rule is checked here again before a launch leaves ([`refuse_forbidden`]): a
//! LAUNCH_GROUP whose tasks name a secret outside the service's namespace is taken out of its
//! ACCEPT (the reservations still go) and its tasks get a TASK_ERROR status naming the secret
//! and the rule — what a master does with a task it refuses. Pure; owns no store.

use serde_json::{json, Value};

use crate::offer::Operation;
use crate::scheduler::Effect;
use crate::secrets::{check_path, may_read, SecretError, SecretSpec};
use crate::task::{TaskInfo, TaskState, TaskStatus};

/// A `Secret` of type REFERENCE naming `path`: never a value.
pub fn reference(path: &str) -> Value {
    json!({"type": "REFERENCE", "reference": {"name": path}})
}

/// The `environment.variables[]` entries of the env-key secrets.
pub fn env_variables(secrets: &[SecretSpec]) -> Vec<Value> {
    secrets
        .iter()
        .filter_map(|s| {
            let name = s.env_key.as_ref()?;
            Some(json!({"name": name, "type": "SECRET", "secret": reference(&s.secret)}))
        })
        .collect()
}

/// The `container.volumes[]` entries of the file secrets (sandbox-relative, read-only).
pub fn volumes(secrets: &[SecretSpec]) -> Vec<Value> {
    secrets
        .iter()
        .filter_map(|s| {
            let path = s.file.as_ref()?;
            Some(json!({
                "container_path": path,
                "mode": "RO",
                "source": {"type": "SECRET", "secret": reference(&s.secret)},
            }))
        })
        .collect()
}

/// Why `task` may not be launched for `service`: its first secret that breaks the path rules
/// or the namespace rule.
pub fn forbidden(service: &str, task: &TaskInfo) -> Option<SecretError> {
    task.secrets.iter().find_map(|spec| {
        if let Err(error) = check_path(&spec.secret) {
            return Some(error);
        }
        (!may_read(service, &spec.secret)).then(|| SecretError::Forbidden {
            service: service.to_string(),
            path: spec.secret.clone(),
        })
    })
}

/// Takes every LAUNCH_GROUP with a task that may not read one of its secrets out of its
/// ACCEPT (the other operations stay) and returns the TASK_ERROR statuses of that group's
/// tasks (no uuid: nothing to acknowledge), each naming the secret and the rule.
pub fn refuse_forbidden(service: &str, effects: &[Effect]) -> (Vec<Effect>, Vec<TaskStatus>) {
    let mut refused = Vec::new();
    let effects = effects
        .iter()
        .map(|effect| {
            let Effect::Accept {
                offer_id,
                agent_id,
                operations,
            } = effect
            else {
                return effect.clone();
            };
            let operations = operations
                .iter()
                .filter(|operation| {
                    let Operation::LaunchGroup { tasks } = operation else {
                        return true;
                    };
                    let Some(error) = tasks.iter().find_map(|t| forbidden(service, t)) else {
                        return true;
                    };
                    refused.extend(tasks.iter().map(|task| TaskStatus {
                        task_id: task.task_id.clone(),
                        agent_id: task.agent_id.clone(),
                        state: TaskState::Error,
                        message: format!("cannot launch: {error}"),
                        ready: false,
                        uuid: None,
                    }));
                    false
                })
                .cloned()
                .collect();
            Effect::Accept {
                offer_id: offer_id.clone(),
                agent_id: agent_id.clone(),
                operations,
            }
        })
        .collect();
    (effects, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(secret: &str, env_key: Option<&str>, file: Option<&str>) -> SecretSpec {
        SecretSpec {
            secret: secret.into(),
            env_key: env_key.map(str::to_string),
            file: file.map(str::to_string),
        }
    }

    #[test]
    fn references_carry_the_path_and_no_value() {
        let secrets = [
            spec(
                "prod/kafka/sasl",
                Some("SASL_PASSWORD"),
                Some("sasl/password"),
            ),
            spec("prod/__dcos_base64__keytab", None, Some("kafka.keytab")),
        ];
        assert_eq!(
            env_variables(&secrets),
            [json!({"name": "SASL_PASSWORD", "type": "SECRET",
                    "secret": {"type": "REFERENCE", "reference": {"name": "prod/kafka/sasl"}}})]
        );
        let volumes = volumes(&secrets);
        assert_eq!(volumes.len(), 2);
        assert_eq!(
            volumes[1],
            json!({"container_path": "kafka.keytab", "mode": "RO",
                   "source": {"type": "SECRET", "secret": {"type": "REFERENCE",
                              "reference": {"name": "prod/__dcos_base64__keytab"}}}})
        );
    }

    #[test]
    fn forbidden_names_the_secret_and_the_rule() {
        let mut task: TaskInfo = serde_json::from_value(json!({
            "name": "kafka-0-broker", "task_id": "kafka-0-broker__1",
            "instance": {"pod": "kafka", "index": 0}, "task": "broker", "goal": "RUNNING",
            "config_id": "00000000-0000-0000-0000-000000000000", "agent_id": "a",
            "hostname": "h", "zone": null, "resources": [], "ports": {}, "env": {},
            "cmd": "true", "files": {}, "permanently_failed": false,
        }))
        .expect("a task info");
        task.secrets = vec![spec("prod/kafka/sasl", Some("X"), None)];
        assert!(forbidden("/prod/kafka", &task).is_none());
        assert!(forbidden("/prod/kafka/sub", &task).is_none());
        let error = forbidden("/dev/kafka", &task).expect("refused").to_string();
        assert!(error.contains("\"prod/kafka/sasl\""), "{error}");
        assert!(
            error.contains("namespace is its own path or an ancestor"),
            "{error}"
        );
        task.secrets = vec![spec("/abs", Some("X"), None)];
        assert!(forbidden("/prod/kafka", &task).is_some());

        let effects = [Effect::Accept {
            offer_id: "o".into(),
            agent_id: "a".into(),
            operations: vec![
                Operation::Reserve { resources: vec![] },
                Operation::LaunchGroup {
                    tasks: vec![task.clone()],
                },
            ],
        }];
        let (kept, refused) = refuse_forbidden("/prod/kafka", &effects);
        let Effect::Accept { operations, .. } = &kept[0] else {
            panic!("an accept")
        };
        assert_eq!(operations.len(), 1, "the launch is taken out");
        assert!(matches!(operations[0], Operation::Reserve { .. }));
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].task_id, "kafka-0-broker__1");
        assert_eq!(refused[0].state, TaskState::Error);
        assert!(refused[0].uuid.is_none());
        assert!(refused[0]
            .message
            .starts_with("cannot launch: secret \"/abs\""));
    }
}
