//! The user's replicated state machine, as hosts (the driver, the simulator) drive it.

use bytes::Bytes;

use crate::error::CodecError;
use crate::ids::LogIndex;

/// A deterministic state machine fed with committed commands.
///
/// Hosts call `apply` for each committed `Command` entry in log order, exactly once;
/// no-op and configuration entries are not passed on.
pub trait StateMachine {
    /// What applying a command returns to the client that proposed it.
    type Response: Clone;

    /// Apply the command committed at `index`.
    fn apply(&mut self, index: LogIndex, command: &Bytes) -> Self::Response;

    /// Serialize the whole state (including any session table).
    fn snapshot(&self) -> Bytes;

    /// Replace the whole state with a snapshot taken by `snapshot`. On error the state is
    /// unchanged.
    fn restore(&mut self, snapshot: &[u8]) -> Result<(), CodecError>;
}

/// A state machine that can answer read-only queries.
///
/// A host calls [`Queryable::query`] for a read only once the replica has said the read is
/// safe (`ReadReady`) and the state machine has applied through the index it named, so the
/// answer is linearizable.
pub trait Queryable: StateMachine {
    /// A read-only question. Use `()` for a machine that answers none.
    type Query;
    /// The answer to a query.
    type Answer;

    /// Answer `query` from the current state, without changing it.
    fn query(&self, query: &Self::Query) -> Self::Answer;
}
