//! Follower appends, truncation and epoch lookups through the log's public API.
