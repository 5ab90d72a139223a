//! Linearizable reads: how the driver asks a state machine a question without a log entry.

use bytes::Bytes;
use rsm_core::StateMachine;
use rsm_core::kv::KvStore;

/// A state machine that can answer read-only queries.
///
/// The driver calls [`Queryable::query`] for a read only once the replica has said the
/// read is safe (`ReadReady`) and the state machine has applied through the index it
/// named, so the answer is linearizable.
pub trait Queryable: StateMachine {
    /// A read-only question. Use `()` for a machine that answers none.
    type Query;
    /// The answer to a query.
    type Answer;

    /// Answer `query` from the current state, without changing it.
    fn query(&self, query: &Self::Query) -> Self::Answer;
}

/// A key-value read: the value of the key, if any.
impl Queryable for KvStore {
    type Query = Bytes;
    type Answer = Option<Bytes>;

    fn query(&self, key: &Bytes) -> Option<Bytes> {
        self.get(key).cloned()
    }
}
