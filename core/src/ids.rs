//! Identifier and epoch newtypes shared by every protocol.

use core::fmt;
use serde::{Deserialize, Serialize};

macro_rules! id_newtype {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The zero value.
            pub const ZERO: Self = Self(0);

            /// The raw number.
            #[inline]
            pub const fn get(self) -> u64 {
                self.0
            }

            /// The next value; saturates at `u64::MAX` rather than wrapping.
            #[inline]
            #[must_use]
            pub const fn next(self) -> Self {
                Self(self.0.saturating_add(1))
            }

            /// The previous value; saturates at zero.
            #[inline]
            #[must_use]
            pub const fn prev(self) -> Self {
                Self(self.0.saturating_sub(1))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }
    };
}

id_newtype!(
    /// A replica's identity, unique within a cluster and never reused.
    NodeId,
    "n"
);
id_newtype!(
    /// A position in the replicated log. Index 0 means "before the first entry";
    /// the first real entry has index 1.
    LogIndex,
    "i"
);
id_newtype!(
    /// The protocol-neutral epoch: Raft's term, Paxos' ballot, VSR's view, as one
    /// totally ordered number. Status, entries and the simulator's invariants use it.
    Epoch,
    "e"
);
id_newtype!(
    /// Raft's term.
    Term,
    "t"
);
id_newtype!(
    /// Viewstamped Replication's view number.
    View,
    "v"
);
id_newtype!(
    /// A host-chosen identifier for one client request (proposal, read, reconfiguration),
    /// echoed back in the effects that answer it.
    RequestId,
    "r"
);
id_newtype!(
    /// A sequence number an automaton gives each `Persist` effect it emits, starting
    /// at 1 after every construction or restore. The host reports durability with
    /// `Input::Persisted { through }`: every persist numbered `<= through` is durable.
    PersistSeq,
    "p"
);

/// A Multi-Paxos ballot: a round number with the proposing node as tie-breaker.
///
/// Ordered by round, then node, so two proposers never share a ballot.
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Ballot {
    /// The round; higher rounds win.
    pub round: u64,
    /// The node that owns this ballot.
    pub node: NodeId,
}

impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b{}.{}", self.round, self.node.0)
    }
}

impl From<Term> for Epoch {
    fn from(t: Term) -> Self {
        Epoch(t.0)
    }
}

impl From<View> for Epoch {
    fn from(v: View) -> Self {
        Epoch(v.0)
    }
}

impl From<Epoch> for Term {
    fn from(e: Epoch) -> Self {
        Term(e.0)
    }
}

impl From<Epoch> for View {
    fn from(e: Epoch) -> Self {
        View(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_and_prev_saturate() {
        assert_eq!(LogIndex(u64::MAX).next(), LogIndex(u64::MAX));
        assert_eq!(LogIndex(0).prev(), LogIndex(0));
        assert_eq!(Term(4).next(), Term(5));
    }

    #[test]
    fn ballots_order_by_round_then_node() {
        let a = Ballot {
            round: 1,
            node: NodeId(9),
        };
        let b = Ballot {
            round: 2,
            node: NodeId(1),
        };
        let c = Ballot {
            round: 2,
            node: NodeId(2),
        };
        assert!(a < b && b < c);
    }
}
