// SPDX-License-Identifier: MPL-2.0

//! What operators see and run beside the element: Prometheus metrics,
//! health, their HTTP endpoint, the segment archive, the bus-errors tracer,
//! and the process-wide tokio runtime.

pub(crate) mod archive;
pub(crate) mod buserrors;
pub(crate) mod health;
pub(crate) mod http;
pub mod metrics;
pub(crate) mod runtime;
