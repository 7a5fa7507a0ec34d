// SPDX-License-Identifier: MPL-2.0

//! A process that runs thousands of threads asks Linux for a futex hash
//! table sized for them.
//!
//! Since 6.16 the kernel gives each multi-threaded process a private futex
//! hash sized from the CPUs it may run on, not from its threads: 16 buckets
//! on a 2-core machine. Every thread of a GStreamer pipeline sleeps on a
//! futex (a pad task, a clock wait, a queue), so with hundreds of streams
//! each wakeup walks a bucket of hundreds of sleepers: measured at 600
//! streams, `futex_wake` alone took 28 % of the process's CPU.
//! `PR_FUTEX_HASH_SET_SLOTS` (prctl 78, 1) sets the table's size. Older
//! kernels refuse the call and share one global table sized for the machine,
//! which is what this asks for anyway: their refusal is not an error.
//!
//! This is the host program's choice, like `MALLOC_ARENA_MAX`: the plugin
//! never changes its host process.

const PR_FUTEX_HASH: libc::c_int = 78;
const PR_FUTEX_HASH_SET_SLOTS: libc::c_ulong = 1;
const PR_FUTEX_HASH_GET_SLOTS: libc::c_ulong = 2;
/// The kernel's own rule gives four buckets per thread (until the CPU cap).
const SLOTS_PER_THREAD: usize = 4;
/// Room for 1,000 streams of five threads and more; a slot is 64 bytes of
/// kernel memory, so the table stays under 4 MiB.
const MAX_SLOTS: usize = 65_536;

/// Asks for a private futex hash for about `threads` threads. Returns the
/// slots the kernel then reports (0: the global table, or an older kernel).
pub fn size_for_threads(threads: usize) -> usize {
    let slots = (threads.max(1) * SLOTS_PER_THREAD)
        .next_power_of_two()
        .min(MAX_SLOTS);
    // SAFETY: prctl with integer arguments only; an unknown option fails
    // with EINVAL and changes nothing.
    unsafe {
        libc::prctl(
            PR_FUTEX_HASH,
            PR_FUTEX_HASH_SET_SLOTS,
            slots as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
        libc::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0).max(0) as usize
    }
}
