//! CPU-heavy request work — compiling the regular expressions a body
//! carries — runs on blocking threads, a few at a time, so that a burst of
//! it cannot take the async workers that every other request needs. A
//! request that must wait for its turn waits asynchronously, holding no
//! thread.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

use crate::core::error::DomainError;

/// Half the machine's cores (at least one): whatever the burst, the other
/// half stays free for everyone else.
static HEAVY_WORK: LazyLock<Semaphore> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Semaphore::new((cores / 2).max(1))
});

/// Runs `work` on a blocking thread once one of the few heavy-work slots
/// is free.
pub async fn run_heavy<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DomainError> {
    let _slot = HEAVY_WORK
        .acquire()
        .await
        .map_err(|_| DomainError::Internal("the heavy-work pool is closed".into()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| DomainError::Internal(format!("heavy work failed: {error}")))
}
