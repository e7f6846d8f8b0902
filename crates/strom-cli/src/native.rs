//! The parts of librdkafka that the `rdkafka` crate (0.39) does not wrap, used through its raw
//! bindings: the leader epoch that ListOffsets returns per partition, the controller id from
//! cluster metadata, and IncrementalAlterConfigs (the crate only wraps the older AlterConfigs,
//! which replaces every override and drops the per-resource error the broker returns).
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

/// The id of the cluster's controller as librdkafka learnt it from metadata, waiting up to
/// `timeout` for a metadata response; `None` when unknown.
pub fn controller_id<C: ClientContext>(client: &Client<C>, timeout: Duration) -> Option<i32> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `client.native_ptr()` is the live `rd_kafka_t` handle owned by `client`, which
    // outlives this call; `rd_kafka_controllerid` is thread-safe and only reads metadata.
    let id = unsafe { bindings::rd_kafka_controllerid(client.native_ptr(), timeout_ms) };
    (id >= 0).then_some(id)
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
