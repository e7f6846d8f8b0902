//! Tests of the session state machine (see session.rs).
