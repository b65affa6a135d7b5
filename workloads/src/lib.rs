//! Shared pieces of the inference server and the load generator.
