// SPDX-License-Identifier: MPL-2.0

//! Containers: the in-memory M4A (ISO BMFF) a segment travels in, and the
//! bit reader its audio configurations (and LATM's) are read with.

pub mod bits;
pub mod m4a;
