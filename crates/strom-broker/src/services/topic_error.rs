//! The error of a topic-level change, already mapped to a Kafka error code: what the topic admin
//! and the replica manager (creating logs) answer and the handlers put in their responses.

/// An error from a topic-level change, already mapped to a Kafka error code.
#[derive(Debug, Clone)]
pub struct TopicError {
    /// The Kafka error code.
    pub code: i16,
    /// A message for the client's `error_message` field and the log.
    pub message: String,
}

impl TopicError {
    /// An error with `code` and `message`.
    pub fn new(code: i16, message: impl Into<String>) -> TopicError {
        TopicError {
            code,
            message: message.into(),
        }
    }

    /// `KAFKA_STORAGE_ERROR` for a storage failure during a topic change (logged here).
    pub fn storage<E: std::fmt::Display>(e: E) -> TopicError {
        tracing::error!(error = %e, "storage failure during a topic change");
        TopicError::new(
            kafka_protocol::error::ResponseError::KafkaStorageError.code(),
            format!("storage failure: {e}"),
        )
    }
}
