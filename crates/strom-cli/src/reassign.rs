//! `strom partition reassign`: Kafka's `kafka-reassign-partitions.sh`. A plan is Kafka's JSON
//! (`{"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}`);
//! `--generate` proposes one for `--topics-to-move-json` over `--broker-list`, `--move-broker N`
//! builds one that moves every replica off broker N (each to the least-loaded other broker not
//! already a replica) and executes it, `--execute` sends it as AlterPartitionReassignments to
//! the controller (printing the current assignment first, to roll back with), `--verify` and
//! `--wait` show each partition's progress (target replicas in the ISR, the adding replicas
//! still catching up, and bytes copied / to copy per replica from DescribeLogDirs;
//! `reassign_progress.rs`), and `--cancel` reverts the plan's partitions that are still moving.
//! `--throttle RATE` sets Kafka's replication throttles for the move (`reassign_throttle.rs`);
//! `--verify` removes them once every partition is moved. Decides nothing about the move
//! itself: the controller does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::Args;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId as Id, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use strom_broker::interbroker::peer::PeerConnection;
use strom_meta::controller::assignment::{assign_replicas, PlacementBroker};
use strom_meta::replication::{BrokerId, TopicPartition};
use strom_meta::zk::{decode_reassignment, encode_reassignment, ReassignmentEntry};

#[path = "reassign_progress.rs"]
mod progress;
#[path = "reassign_throttle.rs"]
mod throttle;

use crate::client::ClientOptions;
use crate::output::{join_ids, print_json, Table};
use crate::txn::wire::error_name;
use progress::{describe_copies, progress, show};

/// `partition reassign` arguments.
#[derive(Debug, Args)]
pub struct ReassignArgs {
    /// The plan: Kafka's reassignment JSON (as `kafka-reassign-partitions.sh` reads it).
    #[arg(long, value_name = "FILE")]
    plan: Option<std::path::PathBuf>,
    /// Propose a plan for `--topics-to-move-json` over `--broker-list` (prints the current
    /// and the proposed assignment; nothing is moved).
    #[arg(long, requires_all = ["topics_to_move_json", "broker_list"])]
    generate: bool,
    /// `{"version":1,"topics":[{"topic":"t"}]}`: the topics `--generate` places.
    #[arg(long, value_name = "FILE")]
    topics_to_move_json: Option<std::path::PathBuf>,
    /// The brokers `--generate` places replicas on, e.g. `1,2,3`.
    #[arg(long, value_delimiter = ',')]
    broker_list: Vec<BrokerId>,
    /// Start the plan's reassignments.
    #[arg(long, requires = "plan")]
    execute: bool,
    /// Show whether each of the plan's partitions has reached its target.
    #[arg(long, requires = "plan")]
    verify: bool,
    /// Cancel the plan's reassignments still in progress (their replicas go back).
    #[arg(long, requires = "plan")]
    cancel: bool,
    /// Drain broker N: move every replica it holds to the other brokers, and execute.
    #[arg(long, value_name = "N")]
    move_broker: Option<BrokerId>,
    /// After executing, show progress until every partition is moved (bounded by
    /// `--timeout-ms`).
    #[arg(long)]
    wait: bool,
    /// Limit the copy to RATE bytes/s per broker (Kafka's `*.replication.throttled.rate` and
    /// `*.replication.throttled.replicas`); `--verify` removes it once the move is done.
    #[arg(long, value_name = "RATE")]
    throttle: Option<u64>,
}

/// Runs `partition reassign`.
pub async fn run(options: &ClientOptions, args: ReassignArgs) -> anyhow::Result<()> {
    if args.generate {
        return generate(options, &args).await;
    }
    let plan = match (&args.plan, args.move_broker) {
        (Some(path), None) => read_plan(path)?,
        (None, Some(broker)) => {
            let plan = drain_plan(options, broker).await?;
            if plan.is_empty() {
                println!("broker {broker} holds no replica: nothing to move");
                return Ok(());
            }
            plan
        }
        (Some(_), Some(_)) => bail!("give either --plan or --move-broker, not both"),
        (None, None) => bail!("give --plan FILE (with --execute, --verify or --cancel), --move-broker N or --generate"),
    };
    if args.cancel {
        let requests = plan.iter().map(|(tp, _)| (tp.clone(), None)).collect();
        return alter(options, requests, "cancelled").await;
    }
    if args.verify {
        let rows = progress(options, &plan).await?;
        show(options, &rows)?;
        let left = rows.iter().filter(|r| r.status != "complete").count();
        if left > 0 {
            bail!("{left} partition(s) have not reached their target yet");
        }
        // As Kafka's tool: once everything is moved, the throttles go.
        // A cluster without dynamic broker configuration refuses: say so, the move is done.
        if let Err(error) = throttle::remove(options, &plan).await {
            eprintln!("warning: could not remove the replication throttles: {error:#}");
        }
        return Ok(());
    }
    if !args.execute && args.move_broker.is_none() {
        bail!("say what to do with the plan: --execute, --verify or --cancel");
    }
    let current = current_assignment(options, &plan).await?;
    if !options.json {
        println!("Current partition replica assignment (save it to roll back with --execute):");
        println!(
            "{}",
            String::from_utf8_lossy(&encode_reassignment(&current))
        );
        println!("Proposed:");
        println!("{}", String::from_utf8_lossy(&encode_reassignment(&plan)));
    }
    if let Some(rate) = args.throttle {
        throttle::set(options, rate, &current, &plan).await?;
    }
    let requests = plan
        .iter()
        .map(|(tp, r)| (tp.clone(), Some(r.clone())))
        .collect();
    alter(options, requests, "started").await?;
    if args.wait {
        let deadline = Instant::now() + options.timeout();
        loop {
            let rows = progress(options, &plan).await?;
            let done = rows.iter().all(|r| r.status == "complete");
            if done || Instant::now() >= deadline {
                show(options, &rows)?;
                if !done {
                    bail!("the reassignment did not finish within --timeout-ms");
                }
                return Ok(());
            }
            if !options.json {
                for r in rows.iter().filter(|r| r.status != "complete") {
                    eprintln!(
                        "{}-{}: {} of the target in the ISR, adding {} (leader {}), copied {}",
                        r.topic,
                        r.partition,
                        r.in_sync,
                        join_ids(&r.adding),
                        r.leader,
                        describe_copies(&r.copies)
                    );
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

fn read_plan(path: &std::path::Path) -> anyhow::Result<Vec<ReassignmentEntry>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let plan = decode_reassignment(&path.display().to_string(), &bytes)?;
    if plan.is_empty() {
        bail!("{} lists no partition", path.display());
    }
    Ok(plan)
}

/// Every partition's replicas and ISR, from Metadata.
fn assignments(
    metadata: &MetadataResponse,
) -> BTreeMap<TopicPartition, (Vec<BrokerId>, Vec<BrokerId>, BrokerId)> {
    let mut out = BTreeMap::new();
    for topic in &metadata.topics {
        let Some(name) = topic.name.as_ref() else {
            continue;
        };
        for p in &topic.partitions {
            out.insert(
                TopicPartition::new(name.0.as_str(), p.partition_index),
                (
                    p.replica_nodes.iter().map(|r| r.0).collect(),
                    p.isr_nodes.iter().map(|r| r.0).collect(),
                    p.leader_id.0,
                ),
            );
        }
    }
    out
}

/// The topics a plan names, each once, sorted.
fn plan_topics(plan: &[ReassignmentEntry]) -> Vec<String> {
    plan.iter()
        .map(|(tp, _)| tp.topic.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

async fn current_assignment(
    options: &ClientOptions,
    plan: &[ReassignmentEntry],
) -> anyhow::Result<Vec<ReassignmentEntry>> {
    let known = assignments(&options.raw_metadata_async(Some(&plan_topics(plan))).await?);
    plan.iter()
        .map(|(tp, _)| {
            let (replicas, _, _) = known
                .get(tp)
                .ok_or_else(|| anyhow!("partition {tp} does not exist"))?;
            Ok((tp.clone(), replicas.clone()))
        })
        .collect()
}

/// Moves every replica off `broker`: each goes to the other live broker holding the fewest
/// replicas that is not already a replica of that partition (same position, so a preferred
/// leader's replacement becomes the preferred leader).
async fn drain_plan(
    options: &ClientOptions,
    broker: BrokerId,
) -> anyhow::Result<Vec<ReassignmentEntry>> {
    let metadata = options.raw_metadata_async(None).await?;
    let others: Vec<BrokerId> = metadata
        .brokers
        .iter()
        .map(|b| b.node_id.0)
        .filter(|&id| id != broker)
        .collect();
    let all = assignments(&metadata);
    let mut load: BTreeMap<BrokerId, usize> = others.iter().map(|&id| (id, 0)).collect();
    for (replicas, _, _) in all.values() {
        for r in replicas {
            if let Some(n) = load.get_mut(r) {
                *n += 1;
            }
        }
    }
    let mut plan = Vec::new();
    for (tp, (replicas, _, _)) in all {
        if !replicas.contains(&broker) {
            continue;
        }
        let replacement = load
            .iter()
            .filter(|(id, _)| !replicas.contains(id))
            .min_by_key(|(id, n)| (**n, **id))
            .map(|(id, _)| *id)
            .ok_or_else(|| anyhow!("{tp}: no other broker can take broker {broker}'s replica"))?;
        *load.get_mut(&replacement).expect("listed") += 1;
        let target = replicas
            .iter()
            .map(|&r| if r == broker { replacement } else { r })
            .collect();
        plan.push((tp, target));
    }
    Ok(plan)
}

async fn generate(options: &ClientOptions, args: &ReassignArgs) -> anyhow::Result<()> {
    let path = args.topics_to_move_json.as_ref().expect("clap requires it");
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let topics: Vec<String> = value
        .get("topics")
        .and_then(|t| t.as_array())
        .ok_or_else(|| anyhow!("{}: \"topics\" is not an array", path.display()))?
        .iter()
        .map(|t| t.get("topic").and_then(|n| n.as_str()).map(str::to_string))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| anyhow!("{}: every entry needs a \"topic\" string", path.display()))?;
    let metadata = options.raw_metadata_async(Some(&topics)).await?;
    let racks: BTreeMap<BrokerId, Option<String>> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, b.rack.as_ref().map(|r| r.to_string())))
        .collect();
    let brokers: Vec<PlacementBroker> = args
        .broker_list
        .iter()
        .map(|&id| PlacementBroker {
            id,
            rack: racks.get(&id).cloned().flatten(),
        })
        .collect();
    let known = assignments(&metadata);
    let mut current = Vec::new();
    let mut proposed = Vec::new();
    for topic in &topics {
        let partitions: Vec<(&TopicPartition, &Vec<BrokerId>)> = known
            .iter()
            .filter(|(tp, _)| &tp.topic == topic)
            .map(|(tp, (r, _, _))| (tp, r))
            .collect();
        let Some((_, first)) = partitions.first() else {
            bail!("topic {topic:?} does not exist");
        };
        let rf = first.len() as i32;
        // Kafka draws the start and the shift at random; the clock will do for a proposal.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize);
        let (start, shift) = (nanos % 7919, nanos / 7919);
        let placed = assign_replicas(&brokers, partitions.len() as i32, rf, 0, start, shift)
            .map_err(|e| anyhow!("{topic}: {e}"))?;
        for (tp, replicas) in partitions {
            current.push((tp.clone(), replicas.clone()));
            proposed.push((tp.clone(), placed[&tp.partition].clone()));
        }
    }
    println!("Current partition replica assignment");
    println!(
        "{}",
        String::from_utf8_lossy(&encode_reassignment(&current))
    );
    println!("\nProposed partition reassignment configuration");
    println!(
        "{}",
        String::from_utf8_lossy(&encode_reassignment(&proposed))
    );
    Ok(())
}

/// Sends AlterPartitionReassignments; prints each partition's result and fails if any
/// partition was refused.
async fn alter(
    options: &ClientOptions,
    requests: Vec<(TopicPartition, Option<Vec<BrokerId>>)>,
    done: &str,
) -> anyhow::Result<()> {
    let mut request = AlterPartitionReassignmentsRequest::default();
    request.timeout_ms = i32::try_from(options.timeout_ms).unwrap_or(i32::MAX);
    request.allow_replication_factor_change = true;
    for (tp, target) in requests {
        let same = request
            .topics
            .last()
            .is_some_and(|t| t.name.0.as_str() == tp.topic);
        if !same {
            let mut topic = ReassignableTopic::default();
            topic.name = TopicName(StrBytes::from_string(tp.topic.clone()));
            request.topics.push(topic);
        }
        let mut partition = ReassignablePartition::default();
        partition.partition_index = tp.partition;
        partition.replicas = target.map(|r| r.into_iter().map(Id).collect());
        request
            .topics
            .last_mut()
            .expect("pushed")
            .partitions
            .push(partition);
    }
    let response = send_to_controller(options, &request, 1, |r| r.error_code).await?;
    if response.error_code != 0 {
        bail!(
            "the controller refused the reassignment: {}",
            error_name(response.error_code)
        );
    }
    let mut table = Table::new(&["TOPIC", "PARTITION", "RESULT"]);
    let mut rows = Vec::new();
    let mut failed = 0;
    for topic in &response.responses {
        for p in &topic.partitions {
            failed += usize::from(p.error_code != 0);
            let result = if p.error_code == 0 {
                done.to_string()
            } else {
                let message = p
                    .error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default();
                format!("{} {message}", error_name(p.error_code))
            };
            table.row(vec![
                topic.name.0.to_string(),
                p.partition_index.to_string(),
                result.clone(),
            ]);
            rows.push(serde_json::json!({
                "topic": topic.name.0.to_string(), "partition": p.partition_index,
                "error_code": p.error_code, "result": result,
            }));
        }
    }
    if options.json {
        print_json(&rows)?;
    } else {
        table.print()?;
    }
    if failed > 0 {
        bail!("{failed} partition(s) were refused");
    }
    Ok(())
}

/// Sends `request` at `version` to the controller Metadata names, asking again after
/// NOT_CONTROLLER or a lost connection, until the request timeout.
pub(crate) async fn send_to_controller<R>(
    options: &ClientOptions,
    request: &R,
    version: i16,
    error_code: impl Fn(&R::Response) -> i16,
) -> anyhow::Result<R::Response>
where
    R: Request,
{
    let started = Instant::now();
    let timeout = options.timeout();
    loop {
        let metadata = options.raw_metadata_async(Some(&[])).await?;
        let controller = metadata.controller_id.0;
        let attempt = async {
            let broker = metadata
                .brokers
                .iter()
                .find(|b| b.node_id.0 == controller)
                .ok_or_else(|| anyhow!("the cluster names no controller now"))?;
            let address = format!("{}:{}", broker.host, broker.port);
            let peer = PeerConnection::connect(&address, "strom-cli", timeout)
                .await
                .with_context(|| {
                    format!("could not connect to controller {controller} at {address}")
                })?;
            let answer = peer
                .call(request, version, timeout + Duration::from_secs(5))
                .await
                .with_context(|| format!("controller {controller} ({address}) did not answer"));
            peer.close();
            answer
        }
        .await;
        let retry = match &attempt {
            Ok(response) => error_code(response) == ResponseError::NotController.code(),
            Err(_) => true,
        };
        if !retry || started.elapsed() >= timeout {
            return attempt;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
