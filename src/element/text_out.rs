// SPDX-License-Identifier: MPL-2.0

//! What waits to leave on text_src (`text.rs`), and whether its task runs.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// What text_src carries.
pub(super) fn caps() -> gst::Caps {
    gst::Caps::builder("text/x-raw")
        .field("format", "utf8")
        .build()
}

#[derive(Default)]
pub(super) struct TextOut {
    queue: Mutex<TextQueue>,
    changed: Condvar,
}

#[derive(Default)]
struct TextQueue {
    items: VecDeque<TextItem>,
    flushing: bool,
    task_started: bool,
}

pub(super) enum TextItem {
    Buffer(gst::Buffer),
    Event(gst::Event),
}

impl TextOut {
    fn lock(&self) -> MutexGuard<'_, TextQueue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops (true) or resumes the task's pushing; stopping drops what waits.
    pub(super) fn set_flushing(&self, flushing: bool) {
        let mut queue = self.lock();
        queue.flushing = flushing;
        queue.items.clear();
        if flushing {
            queue.task_started = false;
        }
        self.changed.notify_all();
    }

    /// Queues `item` (dropped while flushing); true when the task must be
    /// started for it.
    pub(super) fn enqueue(&self, item: TextItem) -> bool {
        let mut queue = self.lock();
        if queue.flushing {
            return false;
        }
        queue.items.push_back(item);
        self.changed.notify_all();
        !std::mem::replace(&mut queue.task_started, true)
    }

    /// The next item, once there is one; None when flushing.
    pub(super) fn next_item(&self) -> Option<TextItem> {
        let mut queue = self.lock();
        loop {
            if queue.flushing {
                return None;
            }
            if let Some(item) = queue.items.pop_front() {
                return Some(item);
            }
            queue = self.changed.wait(queue).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The task paused by itself (at EOS, or on an error downstream).
    pub(super) fn task_paused(&self) {
        self.lock().task_started = false;
    }
}
