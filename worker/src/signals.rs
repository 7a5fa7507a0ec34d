// SPDX-License-Identifier: MPL-2.0

//! What the user programs share: ending on SIGINT (Ctrl-C) or SIGTERM (what
//! a container orchestrator sends) the same way.

/// Runs `stop` on a thread of its own once SIGINT or SIGTERM arrives; never
/// when the signal handlers cannot be installed.
pub fn on_interrupt_or_terminate(stop: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        let Ok(signals) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if signals.block_on(interrupted_or_terminated()) {
            stop();
        }
    });
}

async fn interrupted_or_terminated() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return false;
    };
    tokio::select! {
        _ = interrupt.recv() => true,
        _ = terminate.recv() => true,
    }
}
