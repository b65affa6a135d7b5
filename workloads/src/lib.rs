//! The inference server and the open-loop load generator that the live criteria drive.
//!
//! - [`server`]: HTTP inference server with a calibrated CPU cost per request ([`cpu`]), a
//!   bounded worker pool ([`pool`]) and Prometheus metrics ([`metrics`]).
//! - [`loadgen`]: an open-loop load generator that follows a [`schedule`] and reports a
//!   [`loadgen::Summary`].

pub mod cpu;
pub mod loadgen;
pub mod metrics;
pub mod pool;
pub mod resolve;
pub mod schedule;
pub mod server;
pub mod signal;
