//! The sequential specification of one key: a register that may be absent.

use super::history::{Call, Operation, Outcome, Ret};

/// The state of one key: its value, or `None` when absent.
pub(crate) type State = Option<u64>;

/// Whether `op`, linearized in state `s`, is consistent with what it returned; if so, the
/// state after it. Indeterminate operations are checked as if they had taken effect (the
/// search decides separately whether they take effect at all).
pub(crate) fn step(s: State, op: &Operation) -> Option<State> {
    match (op.call, op.outcome) {
        (Call::Read, Outcome::Ok(Ret::Read(v))) => (s == v).then_some(s),
        (Call::Write(v), Outcome::Ok(Ret::Written) | Outcome::Indeterminate) => Some(v),
        (Call::Cas { expected, new }, Outcome::Ok(Ret::Cas(true))) => {
            (s == expected).then_some(new)
        }
        (Call::Cas { expected, .. }, Outcome::Ok(Ret::Cas(false))) => (s != expected).then_some(s),
        // An indeterminate CAS that happened swapped if it could; otherwise it was a no-op.
        (Call::Cas { expected, new }, Outcome::Indeterminate) => {
            Some(if s == expected { new } else { s })
        }
        // An unfinished read constrains nothing.
        (Call::Read, Outcome::Indeterminate) => Some(s),
        _ => None,
    }
}

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

/// Whether the operation only observes: removing it can only remove constraints.
pub(crate) fn is_observation(op: &Operation) -> bool {
    matches!(
        (op.call, op.outcome),
        (Call::Read, _) | (Call::Cas { .. }, Outcome::Ok(Ret::Cas(false)))
    )
}
