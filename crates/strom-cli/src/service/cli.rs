//! `strom service plan|pod|endpoints|update|uninstall|describe|broker|topic`: the DC/OS Kafka
//! CLI's commands (`dcos kafka …`), talking to a running scheduler's HTTP API. Tables (plan
//! trees as the DC/OS CLI drew them) for people, `--json` for scripts: with `--json` every
//! command prints the API's answer as it came.
//!
//! The scheduler is found with `--api`, `STROM_SCHEDULER_API` or `--state-dir` (its
//! `api-address` file); mutating calls send `--token`/`STROM_SCHEDULER_TOKEN` as a bearer token.
//! An answer outside 2xx is an error naming the status and the scheduler's message (exit 1),
//! except `plan show` of a plan with errors (417), which prints the plan and its errors.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::Value;

use super::http::{Answer, SchedulerClient};
use crate::output::{print_json, Table};

/// How to reach the scheduler; accepted before or after the subcommand.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    /// The scheduler's API, http://HOST:PORT [env: STROM_SCHEDULER_API].
    #[arg(long, global = true, value_name = "URL")]
    api: Option<String>,
    /// The scheduler's state directory: its API address is read from `<DIR>/api-address`.
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Bearer token for mutating calls [env: STROM_SCHEDULER_TOKEN].
    #[arg(long, global = true, value_name = "TOKEN")]
    token: Option<String>,
    /// How long one call may take, milliseconds (and `uninstall`'s wait, ×30).
    #[arg(long, global = true, default_value_t = 10_000, value_name = "MS")]
    api_timeout_ms: u64,
    /// Which service of a scheduler running several (`strom scheduler run --services`): its
    /// routes are `/service/<NAME>/v1/…` (as `dcos kafka --name`) [env: STROM_SERVICE_NAME].
    #[arg(long = "name", id = "service_name", global = true, value_name = "NAME")]
    name: Option<String>,
}

impl ApiArgs {
    fn client(&self) -> anyhow::Result<SchedulerClient> {
        let api = match (&self.api, &self.state_dir) {
            (Some(api), _) => api.clone(),
            (None, Some(dir)) => {
                let file = dir.join("api-address");
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            }
            (None, None) => std::env::var("STROM_SCHEDULER_API").map_err(|_| {
                anyhow!("where is the scheduler? set --api, --state-dir or STROM_SCHEDULER_API")
            })?,
        };
        let token = self
            .token
            .clone()
            .or_else(|| std::env::var("STROM_SCHEDULER_TOKEN").ok())
            .filter(|t| !t.is_empty());
        let mut client =
            SchedulerClient::new(&api, token, Duration::from_millis(self.api_timeout_ms))?;
        let name = self
            .name
            .clone()
            .or_else(|| std::env::var("STROM_SERVICE_NAME").ok())
            .filter(|n| !n.is_empty());
        if let Some(name) = name {
            if name.contains('/') || name.contains('?') || name.contains(' ') {
                bail!("--name {name:?}: a service name has no '/', '?' or space");
            }
            client.prefix = format!("/service/{name}");
        }
        Ok(client)
    }
}

/// `strom service plan …`.
#[derive(Debug, clap::Subcommand)]
pub enum PlanCommand {
    /// The plans' names.
    List,
    /// A plan's phases and steps as a tree (`--watch`: again on every change until it ends).
    Show {
        #[arg(default_value = "deploy")]
        plan: String,
        #[arg(long)]
        watch: bool,
    },
    /// Start a plan (a complete plan starts over; an interrupted one proceeds).
    Start { plan: String },
    /// Stop a plan: interrupt it and set every step back to PENDING.
    Stop { plan: String },
    /// Interrupt a plan or one phase (running steps finish).
    Pause {
        plan: String,
        #[arg(long)]
        phase: Option<String>,
    },
    /// Continue an interrupted plan or phase (and release a canary's next step).
    Resume {
        plan: String,
        #[arg(long)]
        phase: Option<String>,
    },
    /// Restart a plan, a phase or a step: back to PENDING, their tasks relaunched.
    #[command(alias = "restart")]
    ForceRestart {
        plan: String,
        phase: Option<String>,
        step: Option<String>,
    },
    /// Mark a phase or a step complete without running it.
    ForceComplete {
        plan: String,
        phase: String,
        step: Option<String>,
    },
}

/// `strom service pod …`.
#[derive(Debug, clap::Subcommand)]
pub enum PodCommand {
    /// The pod instances.
    List,
    /// Tasks and their states, of every pod or of one.
    Status { pod: Option<String> },
    /// The task infos and statuses of one pod (JSON).
    Info { pod: String },
    /// Kill a pod's tasks and relaunch them in place (same volume).
    Restart { pod: String },
    /// Discard a pod's volume and relaunch it on fresh resources (permanent recovery).
    Replace { pod: String },
    /// Relaunch a pod with its command replaced by a sleep.
    Pause { pod: String },
    /// Relaunch a paused pod with its command.
    Resume { pod: String },
}

/// `strom service update …`.
#[derive(Debug, clap::Subcommand)]
pub enum UpdateCommand {
    /// Render the options, validate them against the target and roll the changed brokers.
    Start {
        #[arg(long, value_name = "FILE")]
        options: PathBuf,
    },
    /// The deploy plan, which carries the update.
    Status,
}

/// `strom service debug …`.
#[derive(Debug, clap::Subcommand)]
pub enum DebugCommand {
    /// For every step waiting for an offer: the recent offers and which evaluation stages
    /// failed, and why (the answer to "my deploy is stuck and nothing says why").
    Offers,
}

/// `strom service broker …`.
#[derive(Debug, clap::Subcommand)]
pub enum BrokerCommand {
    /// The service's broker ids.
    List,
    /// One broker (JSON).
    Get { id: String },
}

/// `strom service topic …` (through the scheduler, which asks its brokers).
#[derive(Debug, clap::Subcommand)]
pub enum TopicCommand {
    /// Topic names.
    List,
    /// A topic's partitions.
    Describe { topic: String },
    /// Create a topic.
    Create {
        topic: String,
        #[arg(short, long, default_value_t = 1)]
        partitions: i32,
        #[arg(short, long, default_value_t = 1)]
        replication: i32,
    },
    /// Delete a topic.
    Delete { topic: String },
}

fn fail(answer: &Answer, what: &str) -> anyhow::Error {
    anyhow!(
        "{what}: the scheduler answered {}: {}",
        answer.status,
        answer.message()
    )
}

/// GET that must succeed.
fn get(client: &SchedulerClient, path: &str) -> anyhow::Result<Value> {
    let answer = client.call("GET", path, None)?;
    if !(200..300).contains(&answer.status) {
        return Err(fail(&answer, &format!("GET {path}")));
    }
    Ok(answer.body)
}

/// A command (POST/PUT/DELETE) that must succeed; prints its message (or JSON).
fn send(
    client: &SchedulerClient,
    method: &str,
    path: &str,
    body: Option<&str>,
    json: bool,
) -> anyhow::Result<Value> {
    let answer = client.call(method, path, body)?;
    if !(200..300).contains(&answer.status) {
        return Err(fail(&answer, &format!("{method} {path}")));
    }
    if json {
        print_json(&answer.body)?;
    } else if let Some(message) = answer.body["message"].as_str() {
        println!("{message}");
    }
    Ok(answer.body)
}

fn print_lines(value: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(value);
    }
    for item in value.as_array().into_iter().flatten() {
        println!("{}", item.as_str().map_or(item.to_string(), str::to_string));
    }
    Ok(())
}

/// The DC/OS CLI's plan tree, with step messages for steps not complete.
pub(crate) fn plan_tree(name: &str, plan: &Value) -> String {
    let mut out = format!(
        "{name} ({} strategy) ({})\n",
        plan["strategy"].as_str().unwrap_or("?"),
        plan["status"].as_str().unwrap_or("?")
    );
    let phases = plan["phases"].as_array().cloned().unwrap_or_default();
    for (p, phase) in phases.iter().enumerate() {
        let last_phase = p + 1 == phases.len();
        out += &format!(
            "{} {} ({} strategy) ({})\n",
            if last_phase { "└─" } else { "├─" },
            phase["name"].as_str().unwrap_or("?"),
            phase["strategy"].as_str().unwrap_or("?"),
            phase["status"].as_str().unwrap_or("?")
        );
        let steps = phase["steps"].as_array().cloned().unwrap_or_default();
        for (s, step) in steps.iter().enumerate() {
            let status = step["status"].as_str().unwrap_or("?");
            let message = step["message"].as_str().unwrap_or("");
            let note = if status != "COMPLETE" && !message.is_empty() {
                format!(": {message}")
            } else {
                String::new()
            };
            out += &format!(
                "{}  {} {} ({status}){note}\n",
                if last_phase { " " } else { "│" },
                if s + 1 == steps.len() {
                    "└─"
                } else {
                    "├─"
                },
                step["name"].as_str().unwrap_or("?"),
            );
        }
    }
    let errors = plan["errors"].as_array().cloned().unwrap_or_default();
    if !errors.is_empty() {
        out += "\nErrors:\n";
        for error in errors {
            out += &format!("- {}\n", error.as_str().unwrap_or(&error.to_string()));
        }
    }
    out
}

fn show_plan(client: &SchedulerClient, plan: &str, watch: bool, json: bool) -> anyhow::Result<()> {
    let path = format!("/v1/plans/{plan}");
    let mut shown = String::new();
    loop {
        let answer = client.call("GET", &path, None)?;
        if !matches!(answer.status, 200 | 202 | 417) {
            return Err(fail(&answer, &format!("plan {plan}")));
        }
        let view = if json {
            serde_json::to_string_pretty(&answer.body)? + "\n"
        } else {
            plan_tree(plan, &answer.body)
        };
        if view != shown {
            print!("{}{view}", if shown.is_empty() { "" } else { "\n" });
            shown = view;
        }
        if !watch || answer.status != 202 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn query(pairs: &[(&str, &Option<String>)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| format!("{key}={v}")))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// Runs `strom service plan …`.
pub fn plan(api: &ApiArgs, command: PlanCommand, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    let post = |path: String| send(&client, "POST", &path, None, json).map(|_| ());
    match command {
        PlanCommand::List => print_lines(&get(&client, "/v1/plans")?, json),
        PlanCommand::Show { plan, watch } => show_plan(&client, &plan, watch, json),
        PlanCommand::Start { plan } => post(format!("/v1/plans/{plan}/start")),
        PlanCommand::Stop { plan } => post(format!("/v1/plans/{plan}/stop")),
        PlanCommand::Pause { plan, phase } => post(format!(
            "/v1/plans/{plan}/interrupt{}",
            query(&[("phase", &phase)])
        )),
        PlanCommand::Resume { plan, phase } => post(format!(
            "/v1/plans/{plan}/continue{}",
            query(&[("phase", &phase)])
        )),
        PlanCommand::ForceRestart { plan, phase, step } => post(format!(
            "/v1/plans/{plan}/restart{}",
            query(&[("phase", &phase), ("step", &step)])
        )),
        PlanCommand::ForceComplete { plan, phase, step } => post(format!(
            "/v1/plans/{plan}/forceComplete{}",
            query(&[("phase", &Some(phase)), ("step", &step)])
        )),
    }
}

fn pod_table(instances: &[Value]) -> Table {
    let mut table = Table::new(&["POD", "TASK", "STATUS", "TASK ID"]);
    for instance in instances {
        for task in instance["tasks"].as_array().into_iter().flatten() {
            table.row(vec![
                instance["name"].as_str().unwrap_or("?").to_string(),
                task["name"].as_str().unwrap_or("?").to_string(),
                task["status"].as_str().unwrap_or("?").to_string(),
                task["id"].as_str().unwrap_or("?").to_string(),
            ]);
        }
    }
    table
}

/// Runs `strom service pod …`.
pub fn pod(api: &ApiArgs, command: PodCommand, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    let pod_command = |pod: &str, verb: &str| -> anyhow::Result<()> {
        let body = send(
            &client,
            "POST",
            &format!("/v1/pod/{pod}/{verb}"),
            None,
            json,
        )?;
        if !json {
            let tasks: Vec<&str> = body["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            println!("{pod}: {verb} of {}", tasks.join(", "));
        }
        Ok(())
    };
    match command {
        PodCommand::List => print_lines(&get(&client, "/v1/pod")?, json),
        PodCommand::Status { pod: None } => {
            let status = get(&client, "/v1/pod/status")?;
            if json {
                return print_json(&status);
            }
            let instances: Vec<Value> = status["pods"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|pod| pod["instances"].as_array().cloned().unwrap_or_default())
                .collect();
            Ok(pod_table(&instances).print()?)
        }
        PodCommand::Status { pod: Some(pod) } => {
            let status = get(&client, &format!("/v1/pod/{pod}/status"))?;
            if json {
                return print_json(&status);
            }
            Ok(pod_table(&[status]).print()?)
        }
        PodCommand::Info { pod } => print_json(&get(&client, &format!("/v1/pod/{pod}/info"))?),
        PodCommand::Restart { pod } => pod_command(&pod, "restart"),
        PodCommand::Replace { pod } => pod_command(&pod, "replace"),
        PodCommand::Pause { pod } => pod_command(&pod, "pause"),
        PodCommand::Resume { pod } => pod_command(&pod, "resume"),
    }
}

/// Runs `strom service endpoints [NAME]`.
pub fn endpoints(api: &ApiArgs, name: Option<String>, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    match name {
        None => print_lines(&get(&client, "/v1/endpoints")?, json),
        Some(name) => print_json(&get(&client, &format!("/v1/endpoints/{name}"))?),
    }
}

/// Runs `strom service update …`.
pub fn update(api: &ApiArgs, command: UpdateCommand, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    match command {
        UpdateCommand::Status => show_plan(&client, "deploy", false, json),
        UpdateCommand::Start { options } => {
            let text = std::fs::read_to_string(&options)
                .with_context(|| format!("cannot read {}", options.display()))?;
            let answer = client.call("POST", "/v1/update", Some(&text))?;
            if json {
                print_json(&answer.body)?;
            }
            match answer.status {
                200 => {
                    if !json {
                        println!(
                            "{} (target {})",
                            answer.message(),
                            answer.body["target_id"].as_str().unwrap_or("?")
                        );
                    }
                    Ok(())
                }
                417 => {
                    if !json {
                        eprintln!("The update was refused; the service keeps its configuration:");
                        for error in answer.body["errors"].as_array().into_iter().flatten() {
                            eprintln!("- {}", error.as_str().unwrap_or("?"));
                        }
                    }
                    bail!("update refused")
                }
                _ => Err(fail(&answer, "update")),
            }
        }
    }
}

/// Runs `strom service uninstall`: starts the uninstall and waits until the scheduler exits.
pub fn uninstall(api: &ApiArgs, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    send(&client, "POST", "/v1/uninstall", None, json)?;
    let deadline = Instant::now() + Duration::from_millis(api.api_timeout_ms.saturating_mul(30));
    while Instant::now() < deadline {
        // One service alone: its scheduler exits. One of several: its routes answer 404.
        let gone = match client.call("GET", "/v1/health", None) {
            Err(_) => true,
            Ok(answer) => answer.status == 404 && !client.prefix.is_empty(),
        };
        if gone {
            if !json {
                println!("the service is uninstalled");
            }
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("the uninstall did not finish in time; `strom service plan show uninstall` shows where it is")
}

/// Runs `strom service describe`: the options of the target configuration.
pub fn describe(api: &ApiArgs) -> anyhow::Result<()> {
    let client = api.client()?;
    print_json(&get(&client, "/v1/state/properties/target-options")?)
}

/// Runs `strom service debug …`.
pub fn debug(api: &ApiArgs, command: DebugCommand, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    let DebugCommand::Offers = command;
    let body = get(&client, "/v1/debug/offers")?;
    if json {
        return print_json(&body);
    }
    let steps = body["steps"].as_array().cloned().unwrap_or_default();
    if steps.is_empty() {
        println!("no step is waiting for an offer");
    }
    for step in steps {
        println!(
            "{} {} ({}): {}",
            step["plan"].as_str().unwrap_or("?"),
            step["step"].as_str().unwrap_or("?"),
            step["status"].as_str().unwrap_or("?"),
            step["message"].as_str().unwrap_or("")
        );
        let offers = step["offers"].as_array().cloned().unwrap_or_default();
        if offers.is_empty() {
            println!("  no offer evaluated yet");
        }
        for offer in offers {
            // The summary names the offer, its host and every failed stage.
            println!("  {}", offer["summary"].as_str().unwrap_or("?"));
        }
    }
    Ok(())
}

/// Runs `strom service broker …`.
pub fn broker(api: &ApiArgs, command: BrokerCommand, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    match command {
        BrokerCommand::List => print_lines(&get(&client, "/v1/brokers")?, json),
        BrokerCommand::Get { id } => print_json(&get(&client, &format!("/v1/brokers/{id}"))?),
    }
}

/// Runs `strom service topic …`.
pub fn topic(api: &ApiArgs, command: TopicCommand, json: bool) -> anyhow::Result<()> {
    let client = api.client()?;
    match command {
        TopicCommand::List => print_lines(&get(&client, "/v1/topics")?, json),
        TopicCommand::Describe { topic } => {
            let description = get(&client, &format!("/v1/topics/{topic}"))?;
            if json {
                return print_json(&description);
            }
            let mut table = Table::new(&["PARTITION", "LEADER", "REPLICAS", "ISR"]);
            for p in description["partitions"].as_array().into_iter().flatten() {
                let ids = |key: &str| {
                    p[key]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                table.row(vec![
                    p["partition"].to_string(),
                    p["leader"].to_string(),
                    ids("replicas"),
                    ids("isr"),
                ]);
            }
            Ok(table.print()?)
        }
        TopicCommand::Create {
            topic,
            partitions,
            replication,
        } => send(
            &client,
            "PUT",
            &format!("/v1/topics/{topic}?partitions={partitions}&replication={replication}"),
            None,
            json,
        )
        .map(|_| ()),
        TopicCommand::Delete { topic } => send(
            &client,
            "DELETE",
            &format!("/v1/topics/{topic}"),
            None,
            json,
        )
        .map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_trees_look_like_the_dcos_cli() {
        let plan = serde_json::json!({
            "status": "IN_PROGRESS", "strategy": "serial", "errors": ["bad: x"],
            "phases": [{"name": "broker", "strategy": "serial", "status": "IN_PROGRESS",
                "steps": [
                    {"name": "kafka-0:[broker]", "status": "COMPLETE", "message": "done"},
                    {"name": "kafka-1:[broker]", "status": "PENDING", "message": "waiting for an offer"},
                ]}],
        });
        assert_eq!(
            plan_tree("deploy", &plan),
            "deploy (serial strategy) (IN_PROGRESS)\n\
             └─ broker (serial strategy) (IN_PROGRESS)\n   \
             ├─ kafka-0:[broker] (COMPLETE)\n   \
             └─ kafka-1:[broker] (PENDING): waiting for an offer\n\
             \nErrors:\n- bad: x\n"
        );
    }
}
