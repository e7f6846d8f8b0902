//! Tests of the JSON conversions (see wire.rs).
