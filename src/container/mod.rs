// SPDX-License-Identifier: MPL-2.0

//! Containers: the in-memory M4A (ISO BMFF) a segment travels in.

pub mod m4a;
