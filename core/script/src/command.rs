//! Parsing one script line into a [`Command`].
//!
//! A line is a command word followed by positional arguments and `key=value` options,
//! separated by whitespace. `propose` is the exception: everything after its node id is
//! the proposal text, verbatim.

use std::collections::BTreeMap;

use rsm_core::NodeId;

/// Which nodes a command addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Nodes {
    /// Every created node, ascending.
    All,
    /// The listed nodes, in the order given.
    List(Vec<NodeId>),
}

/// One parsed script command. See the module documentation for the language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Create {
        ids: Vec<NodeId>,
        voters: Option<Vec<NodeId>>,
        learners: Vec<NodeId>,
        seed: u64,
        /// Protocol-specific `key=value` options, passed to [`super::Protocol::config`].
        options: BTreeMap<String, String>,
    },
    Tick {
        nodes: Nodes,
        n: u64,
    },
    Propose {
        node: NodeId,
        text: String,
    },
    Read {
        node: NodeId,
        key: Option<String>,
    },
    Get {
        node: NodeId,
        key: String,
    },
    Reconfigure {
        node: NodeId,
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
    },
    Transfer {
        node: NodeId,
        to: NodeId,
    },
    Persist {
        nodes: Nodes,
        through: Option<u64>,
    },
    Deliver {
        filter: Filter,
    },
    Drop {
        filter: Filter,
    },
    Partition {
        groups: Vec<Vec<NodeId>>,
    },
    /// Block the directed links listed.
    Cut {
        links: Vec<(NodeId, NodeId)>,
    },
    Heal,
    Crash {
        node: NodeId,
    },
    Restart {
        node: NodeId,
    },
    Disk {
        node: NodeId,
        log: Vec<u64>,
        epoch: Option<u64>,
        vote: Option<NodeId>,
        commit: u64,
    },
    Apply {
        nodes: Nodes,
    },
    Status {
        nodes: Nodes,
    },
    Log {
        nodes: Nodes,
    },
    Network,
    Stabilize,
}

/// Selects queued messages for `deliver` and `drop`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    pub from: Option<NodeId>,
    pub to: Option<NodeId>,
    /// At most this many messages.
    pub n: Option<usize>,
}

impl Filter {
    pub fn matches(&self, from: NodeId, to: NodeId) -> bool {
        self.from.is_none_or(|f| f == from) && self.to.is_none_or(|t| t == to)
    }
}

/// Whitespace-separated arguments split into positional ones and `key=value` options.
struct Args<'a> {
    command: &'a str,
    positional: Vec<&'a str>,
    named: Vec<(&'a str, &'a str)>,
}

impl<'a> Args<'a> {
    fn new(command: &'a str, rest: &'a str) -> Self {
        let mut positional = Vec::new();
        let mut named = Vec::new();
        for word in rest.split_whitespace() {
            match word.split_once('=') {
                Some((k, v)) => named.push((k, v)),
                None => positional.push(word),
            }
        }
        Self {
            command,
            positional,
            named,
        }
    }

    fn take(&mut self, key: &str) -> Option<&'a str> {
        let at = self.named.iter().position(|(k, _)| *k == key)?;
        Some(self.named.remove(at).1)
    }

    fn take_u64(&mut self, key: &str) -> Result<Option<u64>, String> {
        self.take(key)
            .map(|v| number(key, v))
            .transpose()
            .map_err(|e| format!("{}: {e}", self.command))
    }

    fn take_ids(&mut self, key: &str) -> Result<Option<Vec<NodeId>>, String> {
        self.take(key).map(id_list).transpose()
    }

    fn take_id(&mut self, key: &str) -> Result<Option<NodeId>, String> {
        Ok(self.take_u64(key)?.map(NodeId))
    }

    /// Positional arguments as node ids, or `all`.
    fn nodes(&mut self) -> Result<Nodes, String> {
        let words = std::mem::take(&mut self.positional);
        if words == ["all"] {
            return Ok(Nodes::All);
        }
        if words.is_empty() {
            return Err(format!("{}: name a node (or `all`)", self.command));
        }
        words
            .iter()
            .map(|w| node_id(w))
            .collect::<Result<_, _>>()
            .map(Nodes::List)
    }

    /// Exactly one positional node id.
    fn node(&mut self) -> Result<NodeId, String> {
        match std::mem::take(&mut self.positional).as_slice() {
            [one] => node_id(one),
            _ => Err(format!("{}: name exactly one node", self.command)),
        }
    }

    /// Fails if any argument was not consumed, so typos do not pass silently.
    fn finish(self) -> Result<(), String> {
        if let Some(w) = self.positional.first() {
            return Err(format!("{}: unexpected argument `{w}`", self.command));
        }
        if let Some((k, _)) = self.named.first() {
            return Err(format!("{}: unknown option `{k}`", self.command));
        }
        Ok(())
    }
}

fn number(what: &str, s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("`{s}` is not a number (in {what})"))
}

fn node_id(s: &str) -> Result<NodeId, String> {
    number("node id", s).map(NodeId)
}

fn id_list(s: &str) -> Result<Vec<NodeId>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    s.split(',').map(node_id).collect()
}

/// Parse one non-blank, non-comment line.
pub(crate) fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim();
    let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim_start();
    if word == "propose" {
        let (node, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        let text = text.trim();
        if text.is_empty() {
            return Err("propose: usage `propose NODE TEXT`".into());
        }
        return Ok(Command::Propose {
            node: node_id(node)?,
            text: text.to_string(),
        });
    }
    let mut a = Args::new(word, rest);
    let command = match word {
        "create" => {
            let seed = a.take_u64("seed")?.unwrap_or(0);
            let voters = a.take_ids("voters")?;
            let learners = a.take_ids("learners")?.unwrap_or_default();
            let ids = match a.nodes()? {
                Nodes::List(ids) => ids,
                Nodes::All => return Err("create: list the node ids to create".into()),
            };
            let options = std::mem::take(&mut a.named)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Command::Create {
                ids,
                voters,
                learners,
                seed,
                options,
            }
        }
        "tick" => {
            let n = a.take_u64("n")?.unwrap_or(1);
            Command::Tick {
                nodes: a.nodes()?,
                n,
            }
        }
        "tick-all" => Command::Tick {
            nodes: Nodes::All,
            n: a.take_u64("n")?.unwrap_or(1),
        },
        "read" => match std::mem::take(&mut a.positional).as_slice() {
            [node] => Command::Read {
                node: node_id(node)?,
                key: None,
            },
            [node, key] => Command::Read {
                node: node_id(node)?,
                key: Some(key.to_string()),
            },
            _ => return Err("read: usage `read NODE [KEY]`".into()),
        },
        "get" => match std::mem::take(&mut a.positional).as_slice() {
            [node, key] => Command::Get {
                node: node_id(node)?,
                key: key.to_string(),
            },
            _ => return Err("get: usage `get NODE KEY`".into()),
        },
        "reconfigure" => {
            let voters = a
                .take_ids("voters")?
                .ok_or("reconfigure: give voters=ID,ID,...")?;
            let learners = a.take_ids("learners")?.unwrap_or_default();
            Command::Reconfigure {
                node: a.node()?,
                voters,
                learners,
            }
        }
        "transfer" => {
            let to = a.take_id("to")?.ok_or("transfer: give to=ID")?;
            Command::Transfer {
                node: a.node()?,
                to,
            }
        }
        "persist" => {
            let through = a.take_u64("through")?;
            Command::Persist {
                nodes: a.nodes()?,
                through,
            }
        }
        "deliver" => Command::Deliver {
            filter: filter(&mut a)?,
        },
        "drop" => {
            let filter = filter(&mut a)?;
            let all = std::mem::take(&mut a.positional) == ["all"];
            if !all && filter.from.is_none() && filter.to.is_none() {
                return Err("drop: give from=ID and/or to=ID, or `all`".into());
            }
            Command::Drop { filter }
        }
        "partition" => {
            let groups: Vec<Vec<NodeId>> = rest
                .split('|')
                .map(|g| g.split_whitespace().map(node_id).collect())
                .collect::<Result<_, _>>()?;
            if groups.len() < 2 || groups.iter().any(Vec::is_empty) {
                return Err("partition: usage `partition 1 2 | 3 [| ...]`".into());
            }
            a.positional.clear();
            Command::Partition { groups }
        }
        "cut" => {
            let links = match std::mem::take(&mut a.positional).as_slice() {
                [a, b] => {
                    let (a, b) = (node_id(a)?, node_id(b)?);
                    vec![(a, b), (b, a)]
                }
                [one_way] => match one_way.split_once("->") {
                    Some((a, b)) => vec![(node_id(a)?, node_id(b)?)],
                    None => return Err("cut: usage `cut A B` or `cut A->B`".into()),
                },
                _ => return Err("cut: usage `cut A B` or `cut A->B`".into()),
            };
            Command::Cut { links }
        }
        "heal" => Command::Heal,
        "crash" => Command::Crash { node: a.node()? },
        "restart" => Command::Restart { node: a.node()? },
        "disk" => {
            let log = match a.take("log") {
                Some("") | None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(|e| number("log", e))
                    .collect::<Result<_, _>>()?,
            };
            Command::Disk {
                log,
                epoch: a.take_u64("epoch")?,
                vote: a.take_id("vote")?,
                commit: a.take_u64("commit")?.unwrap_or(0),
                node: a.node()?,
            }
        }
        "apply" => Command::Apply { nodes: a.nodes()? },
        "status" => Command::Status { nodes: a.nodes()? },
        "log" => Command::Log { nodes: a.nodes()? },
        "network" => Command::Network,
        "stabilize" => Command::Stabilize,
        other => return Err(format!("unknown command `{other}`")),
    };
    a.finish()?;
    Ok(command)
}

fn filter(a: &mut Args<'_>) -> Result<Filter, String> {
    Ok(Filter {
        from: a.take_id("from")?,
        to: a.take_id("to")?,
        n: a.take_u64("n")?.map(|n| n as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u64]) -> Vec<NodeId> {
        v.iter().map(|&i| NodeId(i)).collect()
    }

    #[test]
    fn create_with_options() {
        assert_eq!(
            parse("create 1 2 3 seed=7 learners=4,5 pre-vote=false").unwrap(),
            Command::Create {
                ids: ids(&[1, 2, 3]),
                voters: None,
                learners: ids(&[4, 5]),
                seed: 7,
                options: [("pre-vote".to_string(), "false".to_string())].into(),
            }
        );
        assert_eq!(
            parse("create 4 voters=1,2,3 learners=").unwrap(),
            Command::Create {
                ids: ids(&[4]),
                voters: Some(ids(&[1, 2, 3])),
                learners: vec![],
                seed: 0,
                options: BTreeMap::new(),
            }
        );
    }

    #[test]
    fn propose_keeps_the_rest_of_the_line() {
        assert_eq!(
            parse("propose 2   x=1 and  more").unwrap(),
            Command::Propose {
                node: NodeId(2),
                text: "x=1 and  more".into()
            }
        );
        assert!(parse("propose 2").is_err());
    }

    #[test]
    fn partition_groups_and_filters() {
        assert_eq!(
            parse("partition 1 2 | 3 | 4 5").unwrap(),
            Command::Partition {
                groups: vec![ids(&[1, 2]), ids(&[3]), ids(&[4, 5])]
            }
        );
        assert!(parse("partition 1 2").is_err());
        assert_eq!(
            parse("cut 1 3").unwrap(),
            Command::Cut {
                links: vec![(NodeId(1), NodeId(3)), (NodeId(3), NodeId(1))]
            }
        );
        assert_eq!(
            parse("cut 2->1").unwrap(),
            Command::Cut {
                links: vec![(NodeId(2), NodeId(1))]
            }
        );
        assert!(parse("cut 1").is_err());
        assert_eq!(
            parse("deliver to=2 n=3").unwrap(),
            Command::Deliver {
                filter: Filter {
                    from: None,
                    to: Some(NodeId(2)),
                    n: Some(3)
                }
            }
        );
        assert!(parse("drop").is_err());
        assert_eq!(
            parse("drop all").unwrap(),
            Command::Drop {
                filter: Filter::default()
            }
        );
    }

    #[test]
    fn disk_images() {
        assert_eq!(
            parse("disk 2 log=1,1,4 epoch=5 vote=3").unwrap(),
            Command::Disk {
                node: NodeId(2),
                log: vec![1, 1, 4],
                epoch: Some(5),
                vote: Some(NodeId(3)),
                commit: 0
            }
        );
        assert!(parse("disk 2 log=1,x").is_err());
    }

    #[test]
    fn typos_are_errors() {
        assert!(
            parse("tick 1 m=3")
                .unwrap_err()
                .contains("unknown option `m`")
        );
        assert!(parse("crash 1 2").is_err());
        assert!(parse("tick x").unwrap_err().contains("not a number"));
        assert!(parse("frobnicate").unwrap_err().contains("unknown command"));
        assert_eq!(
            parse("tick-all n=4").unwrap(),
            Command::Tick {
                nodes: Nodes::All,
                n: 4
            }
        );
        assert_eq!(
            parse("status all").unwrap(),
            Command::Status { nodes: Nodes::All }
        );
    }
}
