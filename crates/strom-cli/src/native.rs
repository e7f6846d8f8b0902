//! The parts of librdkafka that the `rdkafka` crate (0.39) does not wrap, used through its raw
//! bindings: the leader epoch that ListOffsets returns per partition, IncrementalAlterConfigs
//! (the crate only wraps the older AlterConfigs, which replaces every override and drops the
//! per-resource error the broker returns), group
//! listing that neither panics on strings that are not UTF-8 nor drops the per-group error,
//! and every committed offset of a group (ListConsumerGroupOffsets).
//!
//! Every `unsafe` block in the CLI lives here, each with the reason it is sound.

use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::time::Duration;

use anyhow::{bail, Context};

use rdkafka::bindings;
use rdkafka::client::{Client, ClientContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

/// The leader epoch librdkafka stored on each element of `list` (from a ListOffsets v4+
/// response), by partition; `-1` where the broker sent none.
pub fn leader_epochs(list: &TopicPartitionList) -> BTreeMap<i32, i32> {
    let mut epochs = BTreeMap::new();
    // SAFETY: `list.ptr()` is a valid, non-null `rd_kafka_topic_partition_list_t` owned by
    // `list`, which we borrow for the whole block; `elems` holds `cnt` initialised elements,
    // and `rd_kafka_topic_partition_get_leader_epoch` only reads the element it is given.
    unsafe {
        let native = &*list.ptr();
        let count = usize::try_from(native.cnt).unwrap_or(0);
        for index in 0..count {
            let element = native.elems.add(index);
            let epoch = bindings::rd_kafka_topic_partition_get_leader_epoch(element);
            epochs.insert((*element).partition, epoch);
        }
    }
    epochs
}

/// One change of an IncrementalAlterConfigs request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set the override `key` to `value`.
    Set(String, String),
    /// Remove the override `key`, so the broker default applies again.
    Delete(String),
}

/// Frees the librdkafka objects of one admin request when it goes out of scope, whatever path
/// the request takes.
struct AdminRequest {
    queue: *mut bindings::rd_kafka_queue_t,
    options: *mut bindings::rd_kafka_AdminOptions_t,
    resource: *mut bindings::rd_kafka_ConfigResource_t,
    event: *mut bindings::rd_kafka_event_t,
}

impl Drop for AdminRequest {
    fn drop(&mut self) {
        // SAFETY: each pointer is either null or an object this request created and still
        // owns; librdkafka does not keep references to them once the result event is polled.
        unsafe {
            if !self.event.is_null() {
                bindings::rd_kafka_event_destroy(self.event);
            }
            if !self.resource.is_null() {
                bindings::rd_kafka_ConfigResource_destroy(self.resource);
            }
            if !self.options.is_null() {
                bindings::rd_kafka_AdminOptions_destroy(self.options);
            }
            if !self.queue.is_null() {
                bindings::rd_kafka_queue_destroy(self.queue);
            }
        }
    }
}

/// Copies a C string owned by librdkafka, or `None` for a null or empty one.
///
/// # Safety
/// `text` must be null or point to a NUL-terminated string that stays valid for this call.
unsafe fn owned_text(text: *const c_char) -> Option<String> {
    if text.is_null() {
        return None;
    }
    let text = CStr::from_ptr(text).to_string_lossy().into_owned();
    (!text.is_empty()).then_some(text)
}

/// Sends one IncrementalAlterConfigs request for `topic` and waits for its result, returning
/// the broker's error code and message when it refuses.
pub fn incremental_alter_topic_configs<C: ClientContext>(
    client: &Client<C>,
    topic: &str,
    changes: &[ConfigChange],
    validate_only: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let topic_name = CString::new(topic).context("a topic name cannot contain a NUL byte")?;
    let mut texts = Vec::with_capacity(changes.len());
    for change in changes {
        let (key, value) = match change {
            ConfigChange::Set(key, value) => (key, Some(value)),
            ConfigChange::Delete(key) => (key, None),
        };
        let key = CString::new(key.as_str()).context("a config key cannot contain a NUL byte")?;
        let value = value
            .map(|value| CString::new(value.as_str()))
            .transpose()
            .context("a config value cannot contain a NUL byte")?;
        texts.push((key, value));
    }

    let rk = client.native_ptr();
    let mut request = AdminRequest {
        queue: std::ptr::null_mut(),
        options: std::ptr::null_mut(),
        resource: std::ptr::null_mut(),
        event: std::ptr::null_mut(),
    };
    let mut error_text = [0 as c_char; 512];
    // SAFETY: `rk` is the live handle owned by `client`, which outlives this function. Every
    // object created here is owned by `request` and destroyed by its `Drop`; the C strings
    // passed in (`topic_name`, `texts`) outlive the calls that read them, and librdkafka
    // copies them. The result resources are read before `request.event` is destroyed.
    unsafe {
        request.queue = bindings::rd_kafka_queue_new(rk);
        request.options = bindings::rd_kafka_AdminOptions_new(
            rk,
            bindings::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
        );
        if request.queue.is_null() || request.options.is_null() {
            bail!("librdkafka could not prepare the IncrementalAlterConfigs request");
        }
        let error = bindings::rd_kafka_AdminOptions_set_request_timeout(
            request.options,
            timeout_ms,
            error_text.as_mut_ptr(),
            error_text.len(),
        );
        if error != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            bail!(
                "invalid --timeout-ms for IncrementalAlterConfigs: {}",
                owned_text(error_text.as_ptr()).unwrap_or_default()
            );
        }
        if validate_only {
            let error = bindings::rd_kafka_AdminOptions_set_validate_only(
                request.options,
                1,
                error_text.as_mut_ptr(),
                error_text.len(),
            );
            if error != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                bail!(
                    "could not ask for validation only: {}",
                    owned_text(error_text.as_ptr()).unwrap_or_default()
                );
            }
        }
        request.resource = bindings::rd_kafka_ConfigResource_new(
            bindings::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
            topic_name.as_ptr(),
        );
        if request.resource.is_null() {
            bail!("librdkafka could not prepare the config resource for {topic:?}");
        }
        for (key, value) in &texts {
            let (operation, value) = match value {
                Some(value) => (
                    bindings::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                    value.as_ptr(),
                ),
                None => (
                    bindings::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
                    std::ptr::null(),
                ),
            };
            let error = bindings::rd_kafka_ConfigResource_add_incremental_config(
                request.resource,
                key.as_ptr(),
                operation,
                value,
            );
            if !error.is_null() {
                let message = owned_text(bindings::rd_kafka_error_string(error));
                bindings::rd_kafka_error_destroy(error);
                bail!(
                    "librdkafka refused the change to {:?}: {}",
                    key.to_string_lossy(),
                    message.unwrap_or_default()
                );
            }
        }
        let mut resources = [request.resource];
        bindings::rd_kafka_IncrementalAlterConfigs(
            rk,
            resources.as_mut_ptr(),
            resources.len(),
            request.options,
            request.queue,
        );
        // The request timeout bounds the wait inside librdkafka; the extra second lets its
        // own timeout error arrive before ours.
        request.event =
            bindings::rd_kafka_queue_poll(request.queue, timeout_ms.saturating_add(1000));
        if request.event.is_null() {
            bail!("no IncrementalAlterConfigs result within {timeout_ms} ms");
        }
        let error = bindings::rd_kafka_event_error(request.event);
        if error != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let code = RDKafkaErrorCode::from(error);
            let message = owned_text(bindings::rd_kafka_event_error_string(request.event));
            bail!(
                "IncrementalAlterConfigs failed: {code}{}",
                message.map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
        let result = bindings::rd_kafka_event_IncrementalAlterConfigs_result(request.event);
        if result.is_null() {
            bail!("librdkafka returned a result of the wrong type for IncrementalAlterConfigs");
        }
        let mut count = 0;
        let results =
            bindings::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        for index in 0..count {
            let resource = *results.add(index);
            let error = bindings::rd_kafka_ConfigResource_error(resource);
            if error != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                let code = RDKafkaErrorCode::from(error);
                let message = owned_text(bindings::rd_kafka_ConfigResource_error_string(resource));
                bail!(
                    "{code}{}",
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// One member of a consumer group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupMember {
    pub member_id: String,
    pub client_id: String,
    pub client_host: String,
    /// The member's assignment as the group leader wrote it (for `consumer` groups, a
    /// ConsumerProtocolAssignment); empty while a rebalance is under way.
    pub assignment: Vec<u8>,
}

/// One consumer group as ListGroups + DescribeGroups report it, copied out of librdkafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group: String,
    /// The error DescribeGroups returned for this group, if any.
    pub error: Option<RDKafkaErrorCode>,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<GroupMember>,
}

/// Copies a C string owned by librdkafka, lossily, with null and empty both becoming `""`.
///
/// # Safety
/// `text` must be null or point to a NUL-terminated string that stays valid for this call.
unsafe fn lossy_text(text: *const c_char) -> String {
    owned_text(text).unwrap_or_default()
}

/// Copies `size` bytes at `data`, or nothing for a null pointer or a non-positive size.
///
/// # Safety
/// `data` must be null or point to at least `size` readable bytes.
unsafe fn owned_bytes(data: *const std::ffi::c_void, size: std::ffi::c_int) -> Vec<u8> {
    match usize::try_from(size) {
        Ok(size) if !data.is_null() && size > 0 => {
            std::slice::from_raw_parts(data.cast::<u8>(), size).to_vec()
        }
        _ => Vec::new(),
    }
}

/// Lists the cluster's groups with their state and members (librdkafka's
/// `rd_kafka_list_groups`: ListGroups to every broker, then DescribeGroups for what each
/// lists). With `group`, only that group is described; it is absent from the answer when no
/// broker lists it.
///
/// This is the call `rdkafka`'s `fetch_group_list` makes, done here so that strings that are
/// not UTF-8 are copied lossily instead of panicking, and so the per-group error is kept.
pub fn list_groups<C: ClientContext>(
    client: &Client<C>,
    group: Option<&str>,
    timeout: Duration,
) -> Result<Vec<GroupDescription>, RDKafkaErrorCode> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // A group id with a NUL byte cannot exist on the broker either: nothing to list.
    let wanted = match group.map(CString::new).transpose() {
        Ok(wanted) => wanted,
        Err(_) => return Ok(Vec::new()),
    };
    let mut list: *const bindings::rd_kafka_group_list = std::ptr::null();
    // SAFETY: `client.native_ptr()` is the live handle owned by `client`; `wanted` outlives
    // the call, which does not keep it. On success `list` is a group list librdkafka
    // allocated for us: `groups` holds `group_cnt` initialised entries and each entry's
    // `members` holds `member_cnt`; every string is NUL-terminated (or null) and every byte
    // buffer has the size beside it. All of it is copied before the list is destroyed, once.
    unsafe {
        let error = bindings::rd_kafka_list_groups(
            client.native_ptr(),
            wanted.as_ref().map_or(std::ptr::null(), |w| w.as_ptr()),
            &mut list,
            timeout_ms,
        );
        if error != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            if !list.is_null() {
                bindings::rd_kafka_group_list_destroy(list);
            }
            return Err(RDKafkaErrorCode::from(error));
        }
        if list.is_null() {
            return Ok(Vec::new());
        }
        let native = &*list;
        let mut groups = Vec::new();
        let group_count = usize::try_from(native.group_cnt).unwrap_or(0);
        for index in 0..group_count {
            if native.groups.is_null() {
                break;
            }
            let info = &*native.groups.add(index);
            let mut members = Vec::new();
            let member_count = usize::try_from(info.member_cnt).unwrap_or(0);
            for member_index in 0..member_count {
                if info.members.is_null() {
                    break;
                }
                let member = &*info.members.add(member_index);
                members.push(GroupMember {
                    member_id: lossy_text(member.member_id),
                    client_id: lossy_text(member.client_id),
                    client_host: lossy_text(member.client_host),
                    assignment: owned_bytes(
                        member.member_assignment,
                        member.member_assignment_size,
                    ),
                });
            }
            groups.push(GroupDescription {
                group: lossy_text(info.group),
                error: (info.err != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR)
                    .then(|| RDKafkaErrorCode::from(info.err)),
                state: lossy_text(info.state),
                protocol_type: lossy_text(info.protocol_type),
                protocol: lossy_text(info.protocol),
                members,
            });
        }
        bindings::rd_kafka_group_list_destroy(list);
        Ok(groups)
    }
}

/// Frees the librdkafka objects of one ListConsumerGroupOffsets request on every path.
struct OffsetsRequest {
    queue: *mut bindings::rd_kafka_queue_t,
    options: *mut bindings::rd_kafka_AdminOptions_t,
    request: *mut bindings::rd_kafka_ListConsumerGroupOffsets_t,
    event: *mut bindings::rd_kafka_event_t,
}

impl Drop for OffsetsRequest {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or an object this request created and still owns;
        // librdkafka copies the request object when the call is made and keeps no reference
        // to any of them once the result event has been polled.
        unsafe {
            if !self.event.is_null() {
                bindings::rd_kafka_event_destroy(self.event);
            }
            if !self.request.is_null() {
                bindings::rd_kafka_ListConsumerGroupOffsets_destroy(self.request);
            }
            if !self.options.is_null() {
                bindings::rd_kafka_AdminOptions_destroy(self.options);
            }
            if !self.queue.is_null() {
                bindings::rd_kafka_queue_destroy(self.queue);
            }
        }
    }
}

/// Every offset `group` has committed, by topic and partition (OffsetFetch for all topics,
/// through librdkafka's ListConsumerGroupOffsets: the `rdkafka` crate only fetches committed
/// offsets for partitions named in advance). Partitions the broker reports an error for are
/// left out; a group with no commits gives an empty map.
pub fn committed_offsets_of_group<C: ClientContext>(
    client: &Client<C>,
    group: &str,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let group_id = CString::new(group).context("a group id cannot contain a NUL byte")?;
    let rk = client.native_ptr();
    let mut call = OffsetsRequest {
        queue: std::ptr::null_mut(),
        options: std::ptr::null_mut(),
        request: std::ptr::null_mut(),
        event: std::ptr::null_mut(),
    };
    let mut error_text = [0 as c_char; 512];
    let mut offsets = BTreeMap::new();
    // SAFETY: `rk` is the live handle owned by `client`, which outlives this function. The
    // objects created are owned by `call` and destroyed by its `Drop`; `group_id` outlives
    // the call that copies it. The result (groups, their partition lists and strings) is
    // owned by `call.event` and read before it is destroyed; each list holds `cnt` elements.
    unsafe {
        call.queue = bindings::rd_kafka_queue_new(rk);
        call.options = bindings::rd_kafka_AdminOptions_new(
            rk,
            bindings::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
        );
        // Null partitions: every committed offset of the group.
        call.request =
            bindings::rd_kafka_ListConsumerGroupOffsets_new(group_id.as_ptr(), std::ptr::null());
        if call.queue.is_null() || call.options.is_null() || call.request.is_null() {
            bail!("librdkafka could not prepare the ListConsumerGroupOffsets request");
        }
        let error = bindings::rd_kafka_AdminOptions_set_request_timeout(
            call.options,
            timeout_ms,
            error_text.as_mut_ptr(),
            error_text.len(),
        );
        if error != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            bail!(
                "invalid --timeout-ms for ListConsumerGroupOffsets: {}",
                owned_text(error_text.as_ptr()).unwrap_or_default()
            );
        }
        let mut requests = [call.request];
        bindings::rd_kafka_ListConsumerGroupOffsets(
            rk,
            requests.as_mut_ptr(),
            requests.len(),
            call.options,
            call.queue,
        );
        call.event = bindings::rd_kafka_queue_poll(call.queue, timeout_ms.saturating_add(1000));
        if call.event.is_null() {
            bail!("no answer to OffsetFetch for group {group:?} within {timeout_ms} ms");
        }
        let error = bindings::rd_kafka_event_error(call.event);
        if error != bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let code = RDKafkaErrorCode::from(error);
            let message = owned_text(bindings::rd_kafka_event_error_string(call.event));
            bail!(
                "could not fetch the committed offsets of group {group:?}: {code}{}",
                message.map(|m| format!(": {m}")).unwrap_or_default()
            );
        }
        let result = bindings::rd_kafka_event_ListConsumerGroupOffsets_result(call.event);
        if result.is_null() {
            bail!("librdkafka returned a result of the wrong type for ListConsumerGroupOffsets");
        }
        let mut count = 0;
        let groups = bindings::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count);
        for index in 0..count {
            if groups.is_null() {
                break;
            }
            let group_result = *groups.add(index);
            let error = bindings::rd_kafka_group_result_error(group_result);
            if !error.is_null() {
                let code = RDKafkaErrorCode::from(bindings::rd_kafka_error_code(error));
                let message = owned_text(bindings::rd_kafka_error_string(error));
                bail!(
                    "could not fetch the committed offsets of group {group:?}: {code}{}",
                    message.map(|m| format!(": {m}")).unwrap_or_default()
                );
            }
            let partitions = bindings::rd_kafka_group_result_partitions(group_result);
            if partitions.is_null() {
                continue;
            }
            let list = &*partitions;
            let elements = usize::try_from(list.cnt).unwrap_or(0);
            for element_index in 0..elements {
                if list.elems.is_null() {
                    break;
                }
                let element = &*list.elems.add(element_index);
                if element.err == bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    && element.offset >= 0
                {
                    offsets.insert(
                        (lossy_text(element.topic), element.partition),
                        element.offset,
                    );
                }
            }
        }
    }
    Ok(offsets)
}
