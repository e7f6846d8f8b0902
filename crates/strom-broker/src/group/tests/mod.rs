//! Tests of the group core.
