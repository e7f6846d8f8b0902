//! `DescribeCluster`.

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::str_bytes;
use crate::broker::Broker;

/// Describes this single-node cluster: one broker, which is also the controller.
pub fn describe_cluster(
    broker: &Broker,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default();
    response.endpoint_type = request.endpoint_type;
    response.cluster_id = str_bytes(broker.cluster_id.clone());
    response.controller_id = BrokerId(broker.node_id);
    response.cluster_authorized_operations = super::authorized::field(
        request.include_cluster_authorized_operations,
        super::authorized::CLUSTER,
    );
    if let Some(listener) = broker.advertised.first() {
        let mut b = DescribeClusterBroker::default();
        b.broker_id = BrokerId(broker.node_id);
        b.host = str_bytes(listener.host.clone());
        b.port = listener.port as i32;
        b.rack = broker.config.broker_rack.clone().map(str_bytes);
        response.brokers.push(b);
    }
    response
}
