//! `DescribeProducers`: the producer state of partitions this broker leads.

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, TopicResponse};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse};

use crate::services::Services;

/// Handles `DescribeProducers` (not implemented yet: every partition answers
/// `UNKNOWN_SERVER_ERROR`).
pub fn describe_producers(
    _services: &Services,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for topic in request.topics {
        let mut t = TopicResponse::default();
        t.name = topic.name;
        for index in topic.partition_indexes {
            let mut p = PartitionResponse::default();
            p.partition_index = index;
            p.error_code = E::UnknownServerError.code();
            t.partitions.push(p);
        }
        response.topics.push(t);
    }
    response
}
