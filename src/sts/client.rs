// SPDX-License-Identifier: MPL-2.0

//! The element's handle on its STS session: starts the session task,
//! submits fragments, acknowledges what went out, ends the stream, and lets
//! the session go once it has ended (bounded). The task itself is
//! `session.rs`; the client knows nothing of the element.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::exchange::*;
use super::session::{Command, Session};
use super::socketio::{Connector, websocket_connector};

/// How long [`SessionHandle::close`] waits for an ending session: the wait
/// for `stream:complete`, then the polite close (bounded at 1 s by the
/// transport), with room to spare.
pub const CLOSE_LIMIT: Duration = Duration::from_millis(END_WAIT.as_millis() as u64 + 1_500);

/// The element's handle; dropping every clone ends the session.
#[derive(Clone)]
pub struct SessionHandle {
    commands: mpsc::UnboundedSender<Command>,
    lifetime: Arc<Lifetime>,
}

/// Whether the stream was ended, and whether the session task is over:
/// what lets a stop wait for `stream:end` to be answered instead of
/// cutting it off (a process exits right after its pipeline stops).
#[derive(Default)]
struct Lifetime {
    end_asked: std::sync::atomic::AtomicBool,
    over: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Lifetime {
    /// Waits until the session task is over, at most `limit`; true if it is.
    fn wait_over(&self, limit: Duration) -> bool {
        let over = self.over.lock().unwrap_or_else(|e| e.into_inner());
        let (over, _) = self
            .changed
            .wait_timeout_while(over, limit, |over| !*over)
            .unwrap_or_else(|e| e.into_inner());
        *over
    }
}

/// Held by the session task: marks it over when the task returns, is
/// aborted or unwinds.
struct OverOnDrop(Arc<Lifetime>);

impl Drop for OverOnDrop {
    fn drop(&mut self) {
        *self.0.over.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0.changed.notify_all();
    }
}

impl SessionHandle {
    /// Starts the session on `runtime`; it connects in the background.
    pub fn start(
        runtime: &tokio::runtime::Handle,
        config: SessionConfig,
        events: EventSink,
    ) -> Self {
        Self::start_with(runtime, config, events, websocket_connector())
    }

    pub(crate) fn start_with(
        runtime: &tokio::runtime::Handle,
        config: SessionConfig,
        events: EventSink,
        connector: Connector,
    ) -> Self {
        let (commands, receiver) = mpsc::unbounded_channel();
        let lifetime = Arc::new(Lifetime::default());
        let over = OverOnDrop(lifetime.clone());
        let session = Session::new(config, events, receiver, connector);
        runtime.spawn(async move {
            let _over = over;
            session.run().await;
        });
        Self { commands, lifetime }
    }

    /// Hands a fragment over; the receiver gets exactly one reply.
    pub fn submit(&self, fragment: Fragment) -> oneshot::Receiver<Reply> {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Command::Submit(_, tx))) =
            self.commands.send(Command::Submit(fragment, tx))
        {
            let _ = tx.send(Err(Fallback::new(Undubbed::Disconnected, "session ended")));
        }
        rx
    }

    /// The dubbed audio of `fragment_id` went out: acknowledge it as applied.
    pub fn applied(&self, fragment_id: String) {
        let _ = self.commands.send(Command::Applied(fragment_id));
    }

    /// Ends the stream: `stream:end`, a bounded wait for `stream:complete`, disconnect.
    pub fn end(&self) {
        self.lifetime
            .end_asked
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.commands.send(Command::End);
    }

    /// Lets the session go. A stream that was ended finishes its ending
    /// first (what was queued before it, `stream:end`, the wait for
    /// `stream:complete`, the close), for at most `limit`; false if it
    /// took longer. Otherwise the connection closes at once.
    pub fn close(self, limit: Duration) -> bool {
        let lifetime = self.lifetime.clone();
        drop(self);
        if !lifetime.end_asked.load(std::sync::atomic::Ordering::SeqCst) {
            return true;
        }
        lifetime.wait_over(limit)
    }
}
