//! Store calls leave the async threads: they block, sometimes for the length of
//! another writer's commit, and must not stall the server while they do.

use std::sync::Arc;

/// Runs `f` on the blocking pool with the store.
pub(crate) async fn off_thread<S: ?Sized + Send + Sync + 'static, T: Send + 'static>(
    store: &Arc<S>,
    f: impl FnOnce(&S) -> Result<T, g2w_store::StoreError> + Send + 'static,
) -> Result<T, g2w_store::StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| g2w_store::StoreError::Sql(format!("store task failed: {e}")))?
}
