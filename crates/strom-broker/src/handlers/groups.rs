//! Group membership APIs: `FindCoordinator`, `JoinGroup`, `SyncGroup`, `Heartbeat`,
//! `LeaveGroup`, `ListGroups`, `DescribeGroups`, `DeleteGroups`.
//!
//! The logic is the coordinator's; these functions translate between the wire types and its
//! inputs, and keep every response field a version lacks at its default.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{
    BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsRequest, ListGroupsResponse, SyncGroupRequest, SyncGroupResponse,
};

use super::str_bytes;
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::coordinator::{GroupCoordinator, OFFSETS_TOPIC};
use crate::services::group::{GroupState, JoinRequest, SyncRequest};
use crate::services::Services;

/// The (node id, host, port) FindCoordinator answers for broker `id`.
fn endpoint(services: &Services, id: i32) -> Result<(i32, String, i32), (i16, String)> {
    let Some(broker) = services.metadata.broker(id) else {
        return Err((
            E::CoordinatorNotAvailable.code(),
            format!("the coordinator, broker {id}, is not known"),
        ));
    };
    Ok(match broker.endpoints.first() {
        Some(e) => (broker.id, e.host.clone(), i32::from(e.port)),
        None => (broker.id, String::new(), -1),
    })
}

/// Handles `FindCoordinator`: a group's coordinator is the leader of its `__consumer_offsets`
/// partition, a transactional id's the leader of its `__transaction_state` partition, as the
/// metadata cache knows them.
pub fn find_coordinator(
    services: &Arc<Services>,
    ctx: &RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if ctx.version >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    // The coordinator's (node id, host, port), or the error code and message.
    let answer = |key: &str| -> Result<(i32, String, i32), (i16, String)> {
        if request.key_type == 1 {
            let id = super::txn::coordinator_of(services, key)?;
            return endpoint(services, id);
        }
        if request.key_type != 0 {
            return Err((
                E::InvalidRequest.code(),
                format!("unknown coordinator key type {}", request.key_type),
            ));
        }
        if key.is_empty() {
            return Err((E::InvalidGroupId.code(), "the group id is empty".into()));
        }
        if let Err(code) = services.groups.ensure_topic() {
            // Cluster mode: written to ZooKeeper in the background (offsets.topic.*); the
            // client asks again until the partition has a leader, as with Kafka.
            super::topics::auto_create_in_cluster(services, OFFSETS_TOPIC);
            return Err((code, "__consumer_offsets is not available yet".into()));
        }
        let Some(id) = services.groups.coordinator_of(key) else {
            return Err((
                E::CoordinatorNotAvailable.code(),
                "the group's __consumer_offsets partition has no leader".into(),
            ));
        };
        endpoint(services, id)
    };
    let mut response = FindCoordinatorResponse::default();
    if ctx.version >= 4 {
        for key in keys {
            let outcome = answer(&key);
            let mut c = Coordinator::default();
            c.key = str_bytes(key);
            match outcome {
                Ok((node_id, host, port)) => {
                    c.node_id = BrokerId(node_id);
                    c.host = str_bytes(host);
                    c.port = port;
                }
                Err((code, message)) => {
                    c.error_code = code;
                    c.error_message = Some(str_bytes(message));
                    c.node_id = BrokerId(-1);
                    c.port = -1;
                }
            }
            response.coordinators.push(c);
        }
    } else {
        match answer(&keys[0]) {
            Ok((node_id, host, port)) => {
                response.node_id = BrokerId(node_id);
                response.host = str_bytes(host);
                response.port = port;
            }
            Err((code, message)) => {
                response.error_code = code;
                if ctx.version >= 1 {
                    response.error_message = Some(str_bytes(message));
                }
                response.node_id = BrokerId(-1);
                response.port = -1;
            }
        }
    }
    response
}

/// Handles `JoinGroup`; the response waits until the group completes the join.
pub fn join_group(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: JoinGroupRequest,
) -> Reply {
    let group_id = request.group_id.0.to_string();
    let version = ctx.version;
    if group_id.is_empty() {
        let mut response = JoinGroupResponse::default();
        response.error_code = E::InvalidGroupId.code();
        response.generation_id = -1;
        return Reply::Ready(ctx.respond(&response));
    }
    let join = JoinRequest {
        token: 0,
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.to_string(),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        session_timeout_ms: request.session_timeout_ms,
        // Version 0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        require_known_member_id: version >= 4,
        reason: request.reason.as_ref().map(|s| s.to_string()),
    };
    let answer = services
        .groups
        .join(&group_id, join, version >= 9, crate::clock::now_ms());
    Reply::Later(tokio::spawn(async move {
        let mut response = JoinGroupResponse::default();
        match answer.await {
            Ok(result) => {
                response.error_code = result.error_code;
                response.generation_id = result.generation_id;
                if version >= 7 {
                    response.protocol_type = result.protocol_type.map(str_bytes);
                }
                response.protocol_name = result.protocol_name.map(str_bytes);
                if version < 7 && response.protocol_name.is_none() {
                    response.protocol_name = Some(str_bytes(""));
                }
                response.leader = str_bytes(result.leader);
                if version >= 9 {
                    response.skip_assignment = result.skip_assignment;
                }
                response.member_id = str_bytes(result.member_id);
                response.members = result
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = JoinGroupResponseMember::default();
                        member.member_id = str_bytes(m.member_id);
                        if version >= 5 {
                            member.group_instance_id = m.group_instance_id.map(str_bytes);
                        }
                        member.metadata = m.metadata;
                        member
                    })
                    .collect();
            }
            Err(_) => {
                response.error_code = E::CoordinatorNotAvailable.code();
                response.generation_id = -1;
            }
        }
        ctx.respond(&response)
    }))
}

/// Handles `SyncGroup`; followers wait for the leader's assignment.
pub fn sync_group(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: SyncGroupRequest,
) -> Reply {
    let group_id = request.group_id.0.to_string();
    let version = ctx.version;
    let sync = SyncRequest {
        token: 0,
        member_id: request.member_id.to_string(),
        generation_id: request.generation_id,
        group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: request.protocol_type.as_ref().map(|s| s.to_string()),
        protocol_name: request.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: request
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let answer = services
        .groups
        .sync(&group_id, sync, crate::clock::now_ms());
    Reply::Later(tokio::spawn(async move {
        let mut response = SyncGroupResponse::default();
        match answer.await {
            Ok(answer) => {
                let result = GroupCoordinator::settle(&group_id, answer).await;
                response.error_code = result.error_code;
                if version >= 5 {
                    response.protocol_type = result.protocol_type.map(str_bytes);
                    response.protocol_name = result.protocol_name.map(str_bytes);
                }
                response.assignment = result.assignment;
            }
            Err(_) => response.error_code = E::CoordinatorNotAvailable.code(),
        }
        ctx.respond(&response)
    }))
}

/// Handles `Heartbeat`.
pub fn heartbeat(services: &Services, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut response = HeartbeatResponse::default();
    response.error_code = services.groups.heartbeat(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        crate::clock::now_ms(),
    );
    response
}

/// Handles `LeaveGroup`: one member (v0–2) or a batch with instance ids (v3+).
pub fn leave_group(
    services: &Services,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let mut response = LeaveGroupResponse::default();
    let members: Vec<(String, Option<String>)> = if ctx.version >= 3 {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    match services
        .groups
        .leave(&request.group_id.0, &members, crate::clock::now_ms())
    {
        Ok(codes) => {
            if ctx.version >= 3 {
                for ((member_id, instance), code) in members.into_iter().zip(codes) {
                    let mut m = MemberResponse::default();
                    m.member_id = str_bytes(member_id);
                    m.group_instance_id = instance.map(str_bytes);
                    m.error_code = code;
                    response.members.push(m);
                }
            } else {
                response.error_code = codes.first().copied().unwrap_or(0);
            }
        }
        Err(code) => response.error_code = code,
    }
    response
}

/// Handles `ListGroups` with Kafka's state filter (v4+) and type filter (v5+).
pub fn list_groups(
    services: &Services,
    ctx: &RequestContext,
    request: ListGroupsRequest,
) -> ListGroupsResponse {
    let states: Vec<String> = request
        .states_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let types: Vec<String> = request
        .types_filter
        .iter()
        .map(|s| s.to_lowercase())
        .collect();
    let mut response = ListGroupsResponse::default();
    if services.groups.is_loading() {
        response.error_code = E::CoordinatorLoadInProgress.code();
        return response;
    }
    for (id, protocol_type, state) in services.groups.list() {
        let state_name = state.to_string();
        if !states.is_empty() && !states.contains(&state_name.to_lowercase()) {
            continue;
        }
        if !types.is_empty() && !types.contains(&"classic".to_string()) {
            continue;
        }
        let mut g = ListedGroup::default();
        g.group_id = kafka_protocol::messages::GroupId(str_bytes(id));
        g.protocol_type = str_bytes(protocol_type);
        if ctx.version >= 4 {
            g.group_state = str_bytes(state_name);
        }
        if ctx.version >= 5 {
            g.group_type = str_bytes("classic");
        }
        response.groups.push(g);
    }
    response
}

/// Handles `DescribeGroups`. An unknown group is described as `Dead` (v0–5) or answered with
/// `GROUP_ID_NOT_FOUND` (v6+), as Kafka does.
pub fn describe_groups(
    services: &Services,
    ctx: &RequestContext,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for id in request.groups {
        let mut d = DescribedGroup::default();
        d.group_id = id.clone();
        d.authorized_operations = super::authorized::NOT_REQUESTED;
        if let Err(code) = services.groups.check_coordinator(&id.0) {
            d.error_code = code;
            d.group_state = str_bytes("");
            response.groups.push(d);
            continue;
        }
        services
            .groups
            .with_group(&id.0, |group, has_offsets| match group {
                Some(group) if group.state() != GroupState::Dead => {
                    d.group_state = str_bytes(group.state().to_string());
                    d.protocol_type = str_bytes(group.protocol_type().unwrap_or(""));
                    // Kafka shows the protocol only once the group is stable.
                    if group.state() == GroupState::Stable {
                        d.protocol_data = str_bytes(group.protocol_name().unwrap_or(""));
                    }
                    for m in group.members() {
                        let mut member = DescribedGroupMember::default();
                        member.member_id = str_bytes(m.member_id);
                        if ctx.version >= 4 {
                            member.group_instance_id = m.group_instance_id.map(str_bytes);
                        }
                        member.client_id = str_bytes(m.client_id);
                        member.client_host = str_bytes(m.client_host);
                        if group.state() == GroupState::Stable {
                            member.member_metadata = m.metadata;
                            member.member_assignment = m.assignment;
                        }
                        d.members.push(member);
                    }
                }
                _ if has_offsets => {
                    d.group_state = str_bytes("Empty");
                }
                _ => {
                    d.group_state = str_bytes("Dead");
                    if ctx.version >= 6 {
                        d.error_code = E::GroupIdNotFound.code();
                        d.error_message =
                            Some(str_bytes(format!("group '{}' does not exist", id.0)));
                    }
                }
            });
        // Kafka fills in the group's operations only for a group described without error.
        if ctx.version >= 3 && request.include_authorized_operations && d.error_code == 0 {
            d.authorized_operations = super::authorized::GROUP;
        }
        response.groups.push(d);
    }
    response
}

/// Handles `DeleteGroups`. Each group is deleted (its offsets removed, its commits in
/// flight cancelled, its tombstones appended) here, on the connection's reader, in the order
/// of the connection's requests, as OffsetDelete is; the reply's task waits until the
/// tombstones are durable.
pub fn delete_groups(
    services: &Arc<Services>,
    ctx: RequestContext,
    request: DeleteGroupsRequest,
) -> Reply {
    let now = crate::clock::now_ms();
    let deleted: Vec<_> = request
        .groups_names
        .into_iter()
        .map(|id| {
            let deleted = services.groups.delete_group(&id.0, now);
            (id, deleted)
        })
        .collect();
    Reply::Later(tokio::spawn(async move {
        let mut response = DeleteGroupsResponse::default();
        for (id, deleted) in deleted {
            let mut result = DeletableGroupResult::default();
            let deleted = match deleted {
                Ok(appended) => appended.durable(&id.0).await,
                Err(code) => Err(code),
            };
            if let Err(code) = deleted {
                result.error_code = code;
            }
            result.group_id = id;
            response.results.push(result);
        }
        ctx.respond(&response)
    }))
}
