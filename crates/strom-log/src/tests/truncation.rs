//! Crashes in the middle of a truncation.
