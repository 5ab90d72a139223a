//! The simulated network: which directed links are cut, and what a message suffers on the
//! way (delay with a spread that reorders, loss, duplication).

use std::collections::BTreeSet;

use rsm_core::{NodeId, Prng};

/// How the network treats messages on links that are up. Drawn per seed.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct LinkFaults {
    /// Probability that a message is dropped.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// The shortest delivery delay, in simulator time units.
    pub delay_min_units: u64,
    /// Extra delay drawn uniformly from `[0, spread)`: messages overtake one another.
    pub delay_spread_units: u64,
}

impl Default for LinkFaults {
    fn default() -> Self {
        Self {
            loss: 0.0,
            duplicate: 0.0,
            delay_min_units: 1,
            delay_spread_units: 1,
        }
    }
}

/// What happens to one sent message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// The link is cut: the message is gone.
    Blocked,
    /// Lost in transit.
    Lost,
    /// Delivered after each of these delays (two entries: duplicated).
    Deliver(Vec<u64>),
}

/// Directed link state plus per-message faults.
#[derive(Clone, Debug, Default)]
pub struct Network {
    /// Directed links `(from, to)` that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    faults: LinkFaults,
}

impl Network {
    /// A fully connected network with the given per-message faults.
    pub fn new(faults: LinkFaults) -> Self {
        Self {
            cut: BTreeSet::new(),
            faults,
        }
    }

    /// Per-message faults in force.
    pub fn faults(&self) -> LinkFaults {
        self.faults
    }

    /// Replace the per-message faults (the liveness phase turns them off).
    pub fn set_faults(&mut self, faults: LinkFaults) {
        self.faults = faults;
    }

    /// Whether `from` can currently reach `to`.
    pub fn is_connected(&self, from: NodeId, to: NodeId) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Whether any link is cut.
    pub fn is_partitioned(&self) -> bool {
        !self.cut.is_empty()
    }

    /// The cut directed links, ascending.
    pub fn cut_links(&self) -> impl Iterator<Item = (NodeId, NodeId)> + '_ {
        self.cut.iter().copied()
    }

    /// Cut the link from `from` to `to` only (a one-way partition).
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        if from != to {
            self.cut.insert((from, to));
        }
    }

    /// Cut both directions between every node of `a` and every node of `b`.
    pub fn cut_between(&mut self, a: &[NodeId], b: &[NodeId]) {
        for &x in a {
            for &y in b {
                self.cut_one_way(x, y);
                self.cut_one_way(y, x);
            }
        }
    }

    /// Restore every link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Decide what happens to one message sent now from `from` to `to`.
    pub fn route(&self, from: NodeId, to: NodeId, rng: &mut Prng) -> Fate {
        if !self.is_connected(from, to) {
            return Fate::Blocked;
        }
        if rng.chance(self.faults.loss) {
            return Fate::Lost;
        }
        let (min, spread) = (
            self.faults.delay_min_units,
            self.faults.delay_spread_units.max(1),
        );
        let first = min + rng.range(0, spread);
        if rng.chance(self.faults.duplicate) {
            let second = min + rng.range(0, spread);
            Fate::Deliver(vec![first, second])
        } else {
            Fate::Deliver(vec![first])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u64) -> NodeId {
        NodeId(i)
    }

    #[test]
    fn partition_blocks_and_heal_restores() {
        let mut net = Network::new(LinkFaults::default());
        let mut rng = Prng::new(3);
        net.cut_between(&[n(1)], &[n(2), n(3)]);
        assert_eq!(net.route(n(1), n(2), &mut rng), Fate::Blocked);
        assert_eq!(net.route(n(3), n(1), &mut rng), Fate::Blocked);
        assert!(matches!(net.route(n(2), n(3), &mut rng), Fate::Deliver(_)));
        net.heal();
        assert!(!net.is_partitioned());
        assert!(matches!(net.route(n(1), n(2), &mut rng), Fate::Deliver(_)));
    }

    #[test]
    fn one_way_partition_blocks_one_direction() {
        let mut net = Network::new(LinkFaults::default());
        let mut rng = Prng::new(4);
        net.cut_one_way(n(1), n(2));
        assert_eq!(net.route(n(1), n(2), &mut rng), Fate::Blocked);
        assert!(matches!(net.route(n(2), n(1), &mut rng), Fate::Deliver(_)));
    }

    #[test]
    fn delays_spread_loss_and_duplication_follow_the_rates() {
        let net = Network::new(LinkFaults {
            loss: 0.5,
            duplicate: 0.5,
            delay_min_units: 2,
            delay_spread_units: 10,
        });
        let mut rng = Prng::new(5);
        let (mut lost, mut dup, mut delays) = (0, 0, BTreeSet::new());
        for _ in 0..1000 {
            match net.route(n(1), n(2), &mut rng) {
                Fate::Lost => lost += 1,
                Fate::Deliver(d) => {
                    dup += usize::from(d.len() == 2);
                    delays.extend(d);
                }
                Fate::Blocked => unreachable!("no link is cut"),
            }
        }
        assert!((400..600).contains(&lost), "{lost}");
        assert!((150..350).contains(&dup), "{dup}");
        assert_eq!(delays.first(), Some(&2));
        assert_eq!(delays.last(), Some(&11));
    }
}
