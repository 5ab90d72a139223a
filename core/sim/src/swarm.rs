//! Swarm testing: every seed draws its own cluster size, fault mix and client load, so
//! rare combinations of faults get tried without anyone choosing them.

use rsm_core::Prng;

use super::network::LinkFaults;

/// Simulator time units in one nominal node tick. Node clocks run at skewed periods around
/// it, and every other delay (network, fsync) is expressed in the same units.
pub const TICK_UNITS: u64 = 10;

/// Cluster sizes a seed chooses among.
pub const CLUSTER_SIZES: [usize; 4] = [3, 4, 5, 7];

/// How clients read.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReadPath {
    /// `Input::Read`: a read barrier answered with `ReadReady`, served from the local store.
    Barrier,
    /// A `KvOp::Get` proposed through the log like a write.
    Log,
}

/// Everything a seed decides about a run before it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Swarm {
    /// Number of replicas (all voters at first).
    pub nodes: usize,
    /// Number of concurrent clients.
    pub clients: usize,
    /// Number of distinct keys clients touch (few keys, many conflicts).
    pub keys: u64,
    /// Per-message network faults during the fault phase.
    pub link: LinkFaults,
    /// Each node's tick period in time units (skewed clocks).
    pub tick_period_units: Vec<u64>,
    /// Fsync latency range, in time units.
    pub fsync_units_min: u64,
    /// Fsync latency range upper bound (exclusive), in time units.
    pub fsync_units_max: u64,
    /// How often the fault scheduler acts, in time units.
    pub fault_every_units: u64,
    /// Probability that a fault step crashes a node.
    pub crash: f64,
    /// Probability that a fault step changes the partition.
    pub partition: f64,
    /// Probability that a fault step pauses a node.
    pub pause: f64,
    /// Probability that a fault step heals every partition.
    pub heal: f64,
    /// Whether a crash may keep a prefix of the unsynced writes and tear the next one.
    pub torn_writes: bool,
    /// How clients read.
    pub reads: ReadPath,
    /// Probability that a fault step asks the leader for a membership change.
    pub reconfigure: f64,
    /// Probability that a fault step asks the leader to hand over leadership.
    pub transfer: f64,
    /// A client's pause between operations, in time units (upper bound, exclusive).
    pub think_units_max: u64,
    /// Probability that a fault step starts wiping a node's disk, which the node survives
    /// only by rejoining through the safe procedure (removed, restarted blank, added back
    /// as a learner, caught up, promoted). One such procedure runs at a time.
    pub wipe: f64,
}

impl Swarm {
    /// Draw the run's shape from `seed`.
    pub fn draw(seed: u64) -> Self {
        // A stream separate from the run's own PRNG, so changing how a run uses randomness
        // does not change which swarm a seed denotes.
        let mut r = Prng::new(seed ^ 0x5ca1_ab1e_0000_0000);
        let nodes = *r.pick(&CLUSTER_SIZES).expect("non-empty");
        let on = |r: &mut Prng, p: f64| r.chance(p);
        let rate = |r: &mut Prng, max_permille: u64| r.range(0, max_permille + 1) as f64 / 1000.0;
        let link = LinkFaults {
            loss: if on(&mut r, 0.6) {
                rate(&mut r, 150)
            } else {
                0.0
            },
            duplicate: if on(&mut r, 0.5) {
                rate(&mut r, 100)
            } else {
                0.0
            },
            delay_min_units: r.range(1, 6),
            delay_spread_units: r.range(1, 4 * TICK_UNITS),
        };
        let skew = r.range(0, 4);
        let tick_period_units = (0..nodes)
            .map(|_| TICK_UNITS - skew + r.range(0, 2 * skew + 1))
            .collect();
        let fsync_units_min = r.range(1, 10);
        let fsync_units_max = fsync_units_min + r.range(1, 3 * TICK_UNITS);
        Self {
            nodes,
            clients: r.range(1, 5) as usize,
            keys: r.range(1, 4),
            link,
            tick_period_units,
            fsync_units_min,
            fsync_units_max,
            fault_every_units: r.range(2, 20) * TICK_UNITS,
            crash: if on(&mut r, 0.7) {
                rate(&mut r, 300)
            } else {
                0.0
            },
            partition: if on(&mut r, 0.7) {
                rate(&mut r, 400)
            } else {
                0.0
            },
            pause: if on(&mut r, 0.4) {
                rate(&mut r, 200)
            } else {
                0.0
            },
            heal: rate(&mut r, 500).max(0.05),
            torn_writes: on(&mut r, 0.5),
            reads: if on(&mut r, 0.5) {
                ReadPath::Barrier
            } else {
                ReadPath::Log
            },
            reconfigure: if on(&mut r, 0.25) {
                rate(&mut r, 100)
            } else {
                0.0
            },
            transfer: if on(&mut r, 0.25) {
                rate(&mut r, 100)
            } else {
                0.0
            },
            think_units_max: r.range(1, 8) * TICK_UNITS,
            // Drawn last, so that the fields above mean for every seed what they meant
            // before wipes existed.
            wipe: if on(&mut r, 0.3) {
                rate(&mut r, 50)
            } else {
                0.0
            },
        }
    }

    /// A calm run: no faults at all, for tests that need a baseline.
    pub fn calm(nodes: usize) -> Self {
        Self {
            nodes,
            clients: 2,
            keys: 2,
            link: LinkFaults::default(),
            tick_period_units: vec![TICK_UNITS; nodes],
            fsync_units_min: 1,
            fsync_units_max: 3,
            fault_every_units: 10 * TICK_UNITS,
            crash: 0.0,
            partition: 0.0,
            pause: 0.0,
            heal: 0.0,
            torn_writes: false,
            reads: ReadPath::Barrier,
            reconfigure: 0.0,
            transfer: 0.0,
            think_units_max: 2 * TICK_UNITS,
            wipe: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_always_draws_the_same_swarm_and_seeds_differ() {
        assert_eq!(Swarm::draw(7), Swarm::draw(7));
        let sizes: std::collections::BTreeSet<usize> =
            (0..200).map(|s| Swarm::draw(s).nodes).collect();
        assert_eq!(sizes.len(), CLUSTER_SIZES.len(), "every size gets drawn");
        assert!((0..200).any(|s| Swarm::draw(s).crash == 0.0));
        assert!((0..200).any(|s| Swarm::draw(s).crash > 0.1));
        assert!((0..200).any(|s| Swarm::draw(s).wipe == 0.0));
        assert!((0..200).any(|s| Swarm::draw(s).wipe > 0.02));
    }
}
