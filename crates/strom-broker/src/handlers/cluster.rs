//! `DescribeCluster`.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::services::Services;

/// Describes this single-node cluster: one broker, which is also the controller.
pub fn describe_cluster(
    services: &Services,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.endpoint_type = request.endpoint_type;
    response.cluster_id = str_bytes(services.metadata.cluster_id().to_string());
    response.controller_id = BrokerId(services.metadata.local_broker_id());
    response.cluster_authorized_operations = super::authorized::field(
        request.include_cluster_authorized_operations,
        super::authorized::CLUSTER,
    );
    if let Some(listener) = services.metadata.advertised().first() {
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(services.metadata.local_broker_id());
        b.host = str_bytes(listener.host.clone());
        b.port = listener.port as i32;
        b.rack = services.config.broker_rack.clone().map(str_bytes);
        response.brokers.push(b);
    }
    response
}
