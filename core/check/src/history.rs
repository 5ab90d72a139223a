//! Client histories of key-value operations, as recorded by the simulator or a real client.
//!
//! Keys and values are small integers: a recorder maps its real keys to ids and makes every
//! written value unique, which keeps the search cheap and the reports readable.

use serde::{Deserialize, Serialize};

/// What a client asked for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Call {
    /// Read the key.
    Read,
    /// Write the key; `None` deletes it.
    Write(Option<u64>),
    /// Compare-and-swap: if the key holds `expected`, set it to `new`.
    Cas {
        /// The value the key must hold (`None`: absent).
        expected: Option<u64>,
        /// The value to store (`None`: delete).
        new: Option<u64>,
    },
}

impl Call {
    /// Execute this call against a register holding `state`: what it returns and the
    /// register's value afterwards. The sequential specification the checker verifies.
    pub fn execute(self, state: Option<u64>) -> (Ret, Option<u64>) {
        match self {
            Call::Read => (Ret::Read(state), state),
            Call::Write(v) => (Ret::Written, v),
            Call::Cas { expected, new } if state == expected => (Ret::Cas(true), new),
            Call::Cas { .. } => (Ret::Cas(false), state),
        }
    }
}

/// What a completed call returned.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Ret {
    /// A read returned this value.
    Read(Option<u64>),
    /// A write took effect.
    Written,
    /// A compare-and-swap completed: whether it swapped.
    Cas(bool),
}

/// How an operation ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// It took effect, returning this.
    Ok(Ret),
    /// It definitely did not take effect.
    Fail,
    /// It may or may not have taken effect, at any time after its invocation.
    Indeterminate,
}

/// One client operation with its real-time interval.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation {
    /// The client that issued it (a client has at most one operation open at a time).
    pub client: u64,
    /// The key.
    pub key: u64,
    /// The request.
    pub call: Call,
    /// When it was invoked (any monotonic clock: ticks, nanoseconds).
    pub invoke: u64,
    /// When it completed. For `Indeterminate` operations this is ignored: they may take
    /// effect at any time after `invoke`.
    pub complete: u64,
    /// How it ended.
    pub outcome: Outcome,
}

/// A whole history: operations in any order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The operations.
    pub ops: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an operation.
    pub fn push(&mut self, op: Operation) {
        self.ops.push(op);
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the history is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
