//! Dispatch: decode a request frame and start its handler.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

use crate::handlers;
use crate::protocol::frame::Reply;
use crate::protocol::request::{decode_request, encode_frame, Decoded, DecodedRequest, Refusal};
use crate::services::Services;

/// Decodes one request frame (without its size prefix) and starts handling it.
pub fn dispatch(
    services: &Arc<Services>,
    frame: Bytes,
    client_host: &Arc<str>,
) -> Result<Reply, Refusal> {
    let DecodedRequest { mut context, body } = match decode_request(frame)? {
        Decoded::Request(request) => request,
        Decoded::ApiVersionsTooNew { correlation_id } => {
            // Kafka answers with version 0 and UNSUPPORTED_VERSION so the client can downgrade.
            let body = handlers::api_versions::unsupported_version_response();
            return Ok(Reply::Ready(encode_frame(
                correlation_id,
                ApiKey::ApiVersions,
                0,
                &body,
            )));
        }
        Decoded::InterBroker(request) => {
            services.metrics.interbroker_request(request.key);
            return Ok(handlers::interbroker::route(services, request));
        }
    };
    context.client_host = client_host.clone();
    services.metrics.request(context.api);
    Ok(handlers::route(services, context, body))
}
