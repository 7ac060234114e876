//! The store conformance suite against `MemoryStore`, alone and as a pair of clones sharing one
//! state (the in-process equivalent of two pools over one database).

use twofactor::store::{MemoryStore, conformance};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_credential_store_conforms() {
    conformance::credential_store(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_ephemeral_store_conforms() {
    conformance::ephemeral_store(MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_credential_store_pair_conforms() {
    let a = MemoryStore::new();
    conformance::credential_store_pair(a.clone(), a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_ephemeral_store_pair_conforms() {
    let a = MemoryStore::new();
    conformance::ephemeral_store_pair(a.clone(), a).await;
}

/// One store serves both traits and several suites at once, as in an application.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_suites_run_in_parallel_on_one_store() {
    let store = MemoryStore::new();
    tokio::join!(
        conformance::credential_store(store.clone()),
        conformance::credential_store(store.clone()),
        conformance::ephemeral_store(store.clone()),
        conformance::ephemeral_store(store),
    );
}

#[tokio::test(flavor = "current_thread")]
#[should_panic(expected = "multi-thread Tokio runtime")]
async fn suite_refuses_a_runtime_that_cannot_race() {
    conformance::ephemeral_store(MemoryStore::new()).await;
}
