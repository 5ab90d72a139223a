//! The protocol registry: every consensus protocol of this crate, as every tool sees it.
//!
//! The simulator command, the Python module, the scripted interaction tests and the KV
//! server all find protocols here, by name, and reach them through one generic visit
//! ([`visit`], [`visit_all`]), so that adding a protocol is its module plus one line in
//! the `registry!` list below.
//!
//! A [`Protocol`] gives its name, how to configure a node from its id, the initial
//! membership, a seed and named options ([`OptionValue`]: what a script's `key=value` or a
//! Python keyword carries), the configuration mix the simulator's swarm runs, and a
//! one-line printer for its messages.

mod paxos;
mod raft;
mod vsr;

use std::fmt;
use std::str::FromStr;

use rsm_core::{Membership, NodeId, Replica};

pub use paxos::PaxosProtocol;
pub use raft::RaftProtocol;
pub use vsr::VsrProtocol;

/// The value of one named option: options are limits (in ticks, bytes or entries) and
/// switches.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OptionValue {
    /// A count: ticks, bytes, entries.
    Int(u64),
    /// A switch.
    Bool(bool),
}

impl FromStr for OptionValue {
    type Err = OptionError;

    /// `true` and `false` are switches; anything else must be a non-negative integer.
    fn from_str(s: &str) -> Result<Self, OptionError> {
        match s {
            "true" => Ok(OptionValue::Bool(true)),
            "false" => Ok(OptionValue::Bool(false)),
            _ => s.parse().map(OptionValue::Int).map_err(|_| {
                OptionError::Value(format!("`{s}` is neither true, false nor a count"))
            }),
        }
    }
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Int(n) => write!(f, "{n}"),
            OptionValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Why a set of options does not configure a node.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// The protocol has no option of that name.
    #[error("{protocol} has no option `{name}`")]
    Unknown {
        /// The protocol.
        protocol: &'static str,
        /// The option given.
        name: String,
    },
    /// The option has the wrong kind of value.
    #[error("option `{name}` must be {expected}")]
    Type {
        /// The option.
        name: String,
        /// What it takes: "a bool" or "an int".
        expected: &'static str,
    },
    /// The value is out of range, or the options together are inconsistent.
    #[error("{0}")]
    Value(String),
}

impl OptionError {
    /// The error for option `name` given a value of the wrong kind.
    pub fn wrong_type(name: &str, value: &OptionValue) -> Self {
        let expected = match value {
            OptionValue::Int(_) => "a bool",
            OptionValue::Bool(_) => "an int",
        };
        OptionError::Type {
            name: name.to_string(),
            expected,
        }
    }
}

/// Named options, in the order given.
pub type Options = [(String, OptionValue)];

/// A node's configuration from `defaults`: each option set by name with `set`, then the
/// whole checked with `validate`. What every protocol's [`Protocol::config`] does.
fn configure<C, E: fmt::Display>(
    mut config: C,
    protocol: &str,
    options: &Options,
    set: fn(&mut C, &str, &OptionValue) -> Result<(), OptionError>,
    validate: impl Fn(&C) -> Result<(), E>,
) -> Result<C, OptionError> {
    for (name, value) in options {
        set(&mut config, name, value)?;
    }
    validate(&config)
        .map_err(|e| OptionError::Value(format!("invalid {protocol} configuration: {e}")))?;
    Ok(config)
}

/// The count option `name` holds.
fn count(name: &str, value: &OptionValue) -> Result<u64, OptionError> {
    match value {
        OptionValue::Int(n) => Ok(*n),
        OptionValue::Bool(_) => Err(OptionError::wrong_type(name, value)),
    }
}

/// The size (a count that fits in memory) option `name` holds.
fn size(name: &str, value: &OptionValue) -> Result<usize, OptionError> {
    count(name, value).and_then(|n| {
        usize::try_from(n).map_err(|_| OptionError::Value(format!("option `{name}` is too large")))
    })
}

/// The switch option `name` holds.
fn switch(name: &str, value: &OptionValue) -> Result<bool, OptionError> {
    match value {
        OptionValue::Bool(b) => Ok(*b),
        OptionValue::Int(_) => Err(OptionError::wrong_type(name, value)),
    }
}

/// The options every protocol takes, each a count of ticks, so that a tool can set a
/// node's timing without knowing its protocol (the KV server's `--election-ticks-min`,
/// `--election-ticks-max` and `--heartbeat-ticks`): the shortest election (or view
/// change) timeout, the bound below which timeouts are drawn, and the leader's heartbeat
/// period.
pub const TIMING_OPTIONS: [&str; 3] = [
    "election_ticks_min",
    "election_ticks_max",
    "heartbeat_ticks",
];

/// The replica type of protocol `P`.
pub type ReplicaOf<P> = <P as Protocol>::Replica;
/// The configuration type of protocol `P`.
pub type ConfigOf<P> = <<P as Protocol>::Replica as Replica>::Config;
/// The message type of protocol `P`.
pub type MessageOf<P> = <<P as Protocol>::Replica as Replica>::Message;

/// One consensus protocol, as the tools see it.
pub trait Protocol: 'static {
    /// The name tools use (`--protocol raft`, `rsm.simulate("raft")`).
    const NAME: &'static str;
    /// One line for a tool's help.
    const ABOUT: &'static str;
    /// The letter its epochs print with (`t` for terms, `b` for ballots, `v` for views).
    const EPOCH_PREFIX: &'static str;

    /// The automaton. It may move between threads (the driver runs a node on its own
    /// thread; the Python module's objects may be used from any thread).
    type Replica: Replica<Message: Send + Sync> + Send + Sync + 'static;

    /// A node's configuration: defaults, then `options` by name, then validated.
    fn config(
        id: NodeId,
        membership: Membership,
        seed: u64,
        options: &Options,
    ) -> Result<ConfigOf<Self>, OptionError>;

    /// The configuration mix the simulator's swarm runs: it may vary by `run_seed`
    /// (options every node must share depend only on it) and uses small limits so that
    /// compaction, snapshot transfer and flow control all happen.
    fn swarm_config(
        run_seed: u64,
        id: NodeId,
        membership: &Membership,
        seed: u64,
    ) -> ConfigOf<Self>;

    /// One line for a message, for transcripts and traces.
    fn message(msg: &MessageOf<Self>) -> String;
}

/// Generic code to run for a protocol picked by name at run time.
pub trait Visitor {
    /// Run for protocol `P`.
    fn visit<P: Protocol>(&mut self);
}

/// No protocol of that name is registered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown protocol `{name}`; registered: {}", NAMES.join(", "))]
pub struct UnknownProtocol {
    /// The name asked for.
    pub name: String,
}

macro_rules! registry {
    ($($protocol:ty),* $(,)?) => {
        /// The names of every registered protocol, in registry order.
        pub const NAMES: &[&str] = &[$(<$protocol as Protocol>::NAME),*];

        /// Run `visitor` for the protocol called `name`.
        pub fn visit<V: Visitor>(name: &str, visitor: &mut V) -> Result<(), UnknownProtocol> {
            $(
                if name == <$protocol as Protocol>::NAME {
                    visitor.visit::<$protocol>();
                    return Ok(());
                }
            )*
            Err(UnknownProtocol { name: name.to_string() })
        }

        /// Run `visitor` for every registered protocol, in registry order.
        pub fn visit_all<V: Visitor>(visitor: &mut V) {
            $(visitor.visit::<$protocol>();)*
        }
    };
}

// One line per protocol.
registry!(RaftProtocol, PaxosProtocol, VsrProtocol);

#[cfg(test)]
mod tests {
    use super::*;

    struct Names(Vec<&'static str>);

    impl Visitor for Names {
        fn visit<P: Protocol>(&mut self) {
            self.0.push(P::NAME);
        }
    }

    #[test]
    fn every_name_is_visited_once_and_unknown_names_list_the_known() {
        let mut all = Names(Vec::new());
        visit_all(&mut all);
        assert_eq!(all.0, NAMES);
        let mut one = Names(Vec::new());
        visit("raft", &mut one).unwrap();
        assert_eq!(one.0, ["raft"]);
        let error = visit("zab", &mut one).unwrap_err();
        assert!(error.to_string().contains("raft"), "{error}");
    }

    /// Configures a three-node cluster with the KV server's default timing.
    struct Timing(Vec<Result<(), OptionError>>);

    impl Visitor for Timing {
        fn visit<P: Protocol>(&mut self) {
            let options: Vec<_> = TIMING_OPTIONS
                .iter()
                .zip([30, 60, 3])
                .map(|(name, ticks)| (name.to_string(), OptionValue::Int(ticks)))
                .collect();
            let members = Membership::new([NodeId(1), NodeId(2), NodeId(3)]);
            self.0
                .push(P::config(NodeId(1), members, 7, &options).map(drop));
        }
    }

    #[test]
    fn every_protocol_takes_the_timing_options() {
        let mut timing = Timing(Vec::new());
        visit_all(&mut timing);
        assert_eq!(timing.0.len(), NAMES.len());
        for (name, result) in NAMES.iter().zip(timing.0) {
            assert_eq!(result, Ok(()), "{name}");
        }
    }

    #[test]
    fn option_values_parse_from_text() {
        assert_eq!("true".parse(), Ok(OptionValue::Bool(true)));
        assert_eq!("12".parse(), Ok(OptionValue::Int(12)));
        assert!("-1".parse::<OptionValue>().is_err());
    }
}
