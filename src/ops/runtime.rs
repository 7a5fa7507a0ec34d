// SPDX-License-Identifier: MPL-2.0

//! The one tokio runtime shared by every stsdub element of the process.
//!
//! Two worker threads are plenty: the work is network I/O, packing and base64,
//! never long computations, and a process may run dozens of streams.

use std::sync::LazyLock;

pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(2)
        .thread_name("stsdub-runtime")
        .build()
        .expect("cannot start the stsdub tokio runtime: the process is out of threads")
});
