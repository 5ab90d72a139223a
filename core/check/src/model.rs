//! Which outcomes fit which calls: the shape every operation of a history must have.

use super::history::{Call, Operation, Outcome, Ret};

/// Whether an operation's outcome is consistent with its call at all.
pub(crate) fn well_formed(op: &Operation) -> bool {
    matches!(
        (op.call, op.outcome),
        (_, Outcome::Fail | Outcome::Indeterminate)
            | (Call::Read, Outcome::Ok(Ret::Read(_)))
            | (Call::Write(_), Outcome::Ok(Ret::Written))
            | (Call::Cas { .. }, Outcome::Ok(Ret::Cas(_)))
    )
}
