//! `DescribeCluster`.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::services::Services;

/// Describes the cluster as the metadata cache knows it: the live brokers and the controller.
pub fn describe_cluster(
    services: &Services,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.endpoint_type = request.endpoint_type;
    response.cluster_id = str_bytes(services.metadata.cluster_id().to_string());
    response.controller_id = BrokerId(services.metadata.controller_id());
    response.cluster_authorized_operations = super::authorized::field(
        request.include_cluster_authorized_operations,
        super::authorized::CLUSTER,
    );
    for broker in services.metadata.brokers() {
        let Some(endpoint) = broker.endpoints.first() else {
            continue;
        };
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(broker.id);
        b.host = str_bytes(endpoint.host.clone());
        b.port = i32::from(endpoint.port);
        b.rack = broker.rack.clone().map(str_bytes);
        response.brokers.push(b);
    }
    response
}
