//! Every registered protocol at the rule level, through the scripted interaction format of
//! `rsm_script`: each script under `tests/scripts/<protocol>/` is a golden transcript of
//! one situation from the protocol's paper. `RSM_REWRITE=1 cargo test -p rsm-consensus
//! --test scripts` regenerates them; read the diff before committing it.

use std::marker::PhantomData;
use std::path::Path;

use rsm_consensus::registry::{self, ConfigOf, MessageOf, OptionValue, Protocol, Visitor};
use rsm_script::{self as script, NodeSetup};

/// Scripts any registered protocol: `create` options name its configuration's fields
/// (`pre_vote=false`, `election_ticks_min=5`, ...).
struct Scripts<P>(PhantomData<P>);

impl<P: Protocol> script::Protocol for Scripts<P> {
    type Replica = P::Replica;

    fn config(&self, setup: &NodeSetup<'_>) -> Result<ConfigOf<P>, String> {
        let options = setup
            .options
            .iter()
            .map(|(key, value)| {
                let value: OptionValue = value.parse().map_err(|e| format!("{key}: {e}"))?;
                Ok((key.clone(), value))
            })
            .collect::<Result<Vec<_>, String>>()?;
        P::config(setup.id, setup.membership.clone(), setup.seed, &options)
            .map_err(|e| e.to_string())
    }

    fn message(&self, msg: &MessageOf<P>) -> String {
        P::message(msg)
    }

    fn epoch_prefix(&self) -> &'static str {
        P::EPOCH_PREFIX
    }
}

/// Runs the golden scripts of each protocol that has a directory of them.
struct RunScripts {
    ran: Vec<&'static str>,
}

impl Visitor for RunScripts {
    fn visit<P: Protocol>(&mut self) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/scripts")
            .join(P::NAME);
        if dir.is_dir() {
            script::run_dir(&dir, || Scripts::<P>(PhantomData));
            self.ran.push(P::NAME);
        }
    }
}

#[test]
fn golden_scripts_of_every_protocol() {
    let mut run = RunScripts { ran: Vec::new() };
    registry::visit_all(&mut run);
    assert!(
        run.ran.contains(&"raft"),
        "Raft's scripts ran: {:?}",
        run.ran
    );
}
