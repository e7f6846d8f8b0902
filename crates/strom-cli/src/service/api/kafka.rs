//! The Kafka service's own routes (DC/OS Kafka's `BrokerResource` and `TopicResource`):
//!
//! - `GET /v1/brokers`: the broker ids of the service's pod instances, as strings (the
//!   children of `/brokers/ids` DC/OS Kafka listed); `GET /v1/brokers/<id>`: that broker in
//!   the shape of its Kafka registration (`host`, `port`, `endpoints`,
//!   `listener_security_protocol_map`, `rack`, `version`) plus the scheduler's view (`task`,
//!   `task_id`, `state`). Both come from the scheduler's state, so they answer while brokers
//!   are down (DC/OS Kafka read ZooKeeper, so a dead broker vanished from the list).
//! - `GET /v1/topics`: topic names; `GET /v1/topics/<t>`: its partitions (leader, epoch,
//!   replicas, ISR); `PUT /v1/topics/<t>?partitions=&replication=`: create;
//!   `DELETE /v1/topics/<t>`: delete. These ask the running brokers (their addresses from the
//!   scheduler's state) through the CLI's client code, with the core's lock released.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use kafka_protocol::messages::MetadataResponse;
use rdkafka::admin::{NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};
use strom_scheduler::task::TaskRecord;

use super::{message, Api};
use crate::client::ClientOptions;
use crate::service::health::{self, BROKER_TASK};
/// How long one request to the brokers may take.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

fn broker_records(api: &Api) -> Vec<TaskRecord> {
    let core = api.lock();
    let mut records: Vec<TaskRecord> = core
        .scheduler
        .tasks()
        .values()
        .filter(|r| r.info.task == BROKER_TASK && !r.info.permanently_failed)
        .cloned()
        .collect();
    records.sort_by_key(|r| r.info.instance.index);
    records
}

fn broker_json(record: &TaskRecord) -> Value {
    let info = &record.info;
    let address = health::broker_address(record);
    let (host, port) = match address.as_deref().and_then(|a| a.rsplit_once(':')) {
        Some((host, port)) => (Some(host), port.parse::<u16>().ok()),
        None => (None, None),
    };
    let state = record.status.as_ref().map(|s| s.state);
    json!({
        "id": info.instance.index,
        "host": host,
        "port": port,
        "endpoints": address.iter().map(|a| format!("PLAINTEXT://{a}")).collect::<Vec<_>>(),
        "listener_security_protocol_map": {"PLAINTEXT": "PLAINTEXT"},
        "rack": info.zone,
        "version": 5,
        "jmx_port": -1,
        "task": info.name,
        "task_id": info.task_id,
        "state": state,
    })
}

pub(super) async fn brokers(State(api): State<Api>) -> Json<Value> {
    Json(json!(broker_records(&api)
        .iter()
        .map(|r| r.info.instance.index.to_string())
        .collect::<Vec<_>>()))
}

pub(super) async fn broker(State(api): State<Api>, Path(id): Path<String>) -> Response {
    let found = id.parse::<u32>().ok().and_then(|index| {
        broker_records(&api)
            .into_iter()
            .find(|r| r.info.instance.index == index)
    });
    match found {
        Some(record) => Json(broker_json(&record)).into_response(),
        None => message(StatusCode::NOT_FOUND, &format!("broker {id:?} not found")),
    }
}

/// Client options over the running brokers, if any runs.
fn client_options(api: &Api) -> Option<ClientOptions> {
    let addresses = health::running_broker_addresses(&api.lock());
    (!addresses.is_empty()).then(|| health::client_options(&addresses, BROKER_TIMEOUT))
}

fn no_broker() -> Response {
    message(
        StatusCode::SERVICE_UNAVAILABLE,
        "no broker of the service is running",
    )
}

async fn metadata(
    options: ClientOptions,
    topics: Option<Vec<String>>,
) -> Result<MetadataResponse, Response> {
    let answer = tokio::task::spawn_blocking(move || options.raw_metadata(topics.as_deref())).await;
    match answer {
        Ok(Ok(metadata)) => Ok(metadata),
        Ok(Err(error)) => Err(message(StatusCode::BAD_GATEWAY, &format!("{error:#}"))),
        Err(error) => Err(message(
            StatusCode::INTERNAL_SERVER_ERROR,
            &error.to_string(),
        )),
    }
}

pub(super) async fn topics(State(api): State<Api>) -> Response {
    let Some(options) = client_options(&api) else {
        return no_broker();
    };
    match metadata(options, None).await {
        Ok(metadata) => {
            let mut names: Vec<String> = metadata
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.as_str().to_string()))
                .collect();
            names.sort();
            Json(json!(names)).into_response()
        }
        Err(response) => response,
    }
}

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC: i16 = 3;

pub(super) async fn topic(State(api): State<Api>, Path(name): Path<String>) -> Response {
    let Some(options) = client_options(&api) else {
        return no_broker();
    };
    let metadata = match metadata(options, Some(vec![name.clone()])).await {
        Ok(metadata) => metadata,
        Err(response) => return response,
    };
    let Some(topic) = metadata.topics.first() else {
        return message(StatusCode::NOT_FOUND, &format!("topic {name:?} not found"));
    };
    if topic.error_code == UNKNOWN_TOPIC {
        return message(StatusCode::NOT_FOUND, &format!("topic {name:?} not found"));
    }
    let mut partitions: Vec<Value> = topic
        .partitions
        .iter()
        .map(|p| {
            json!({
                "partition": p.partition_index,
                "leader": p.leader_id.0,
                "leader_epoch": p.leader_epoch,
                "replicas": p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                "isr": p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>(),
                "error_code": p.error_code,
            })
        })
        .collect();
    partitions.sort_by_key(|p| p["partition"].as_i64());
    Json(json!({ "name": name, "error_code": topic.error_code, "partitions": partitions }))
        .into_response()
}

#[derive(Debug, Deserialize)]
pub(super) struct CreateQuery {
    partitions: Option<i32>,
    replication: Option<i32>,
}

fn admin_error(action: &str, topic: &str, code: RDKafkaErrorCode) -> Response {
    let status = match code {
        RDKafkaErrorCode::TopicAlreadyExists => StatusCode::CONFLICT,
        RDKafkaErrorCode::UnknownTopicOrPartition => StatusCode::NOT_FOUND,
        RDKafkaErrorCode::InvalidPartitions
        | RDKafkaErrorCode::InvalidReplicationFactor
        | RDKafkaErrorCode::InvalidTopic => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    message(status, &format!("cannot {action} topic {topic:?}: {code}"))
}

pub(super) async fn create_topic(
    State(api): State<Api>,
    Path(name): Path<String>,
    Query(query): Query<CreateQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = api.refuse(&headers) {
        return refused;
    }
    let partitions = query.partitions.unwrap_or(1);
    let replication = query.replication.unwrap_or(1);
    if partitions < 1 || replication < 1 {
        return message(
            StatusCode::BAD_REQUEST,
            "partitions and replication must be at least 1",
        );
    }
    let Some(options) = client_options(&api) else {
        return no_broker();
    };
    let admin = match options.admin() {
        Ok(admin) => admin,
        Err(error) => return message(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error:#}")),
    };
    let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(replication));
    match admin.create_topics([&topic], &options.admin_options()).await {
        Ok(results) => match results.into_iter().next() {
            Some(Err((topic, code))) => admin_error("create", &topic, code),
            _ => Json(json!({
                "message": format!("Created topic {name:?} with {partitions} partitions and replication factor {replication}.")
            }))
            .into_response(),
        },
        Err(error) => message(
            StatusCode::BAD_GATEWAY,
            &format!("{:#}", options.unreachable(error)),
        ),
    }
}

pub(super) async fn delete_topic(
    State(api): State<Api>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = api.refuse(&headers) {
        return refused;
    }
    let Some(options) = client_options(&api) else {
        return no_broker();
    };
    let admin = match options.admin() {
        Ok(admin) => admin,
        Err(error) => return message(StatusCode::INTERNAL_SERVER_ERROR, &format!("{error:#}")),
    };
    match admin
        .delete_topics(&[name.as_str()], &options.admin_options())
        .await
    {
        Ok(results) => match results.into_iter().next() {
            Some(Err((topic, code))) => admin_error("delete", &topic, code),
            _ => Json(json!({ "message": format!("Topic {name} is marked for deletion.") }))
                .into_response(),
        },
        Err(error) => message(
            StatusCode::BAD_GATEWAY,
            &format!("{:#}", options.unreachable(error)),
        ),
    }
}
