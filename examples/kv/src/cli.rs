//! What the `rsm-kv` command prints and how it exits: text for a person, one JSON object
//! per command for a script, and exit codes a script can rely on ([`Exit`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use rsm_core::{NodeId, Role};
use serde_json::{Value, json};

use crate::client::{CasOutcome, KvClient, KvError};
use crate::wire::ServerStatus;

/// The exit codes, as printed at the end of `rsm-kv --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  done (status: at least one server answered)
  1  the cluster answered no: get found no value, cas found another value, or the
     request was refused for good (for example, too large)
  2  usage error
  3  unavailable: no server or no leader answered within --timeout; for put, delete
     and cas the outcome is then unknown (the write may or may not have been applied)";

/// How the command ends.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// The cluster answered no: not found, compare-and-swap refused, request refused.
    No = 1,
    /// The command line does not parse (clap exits with this code itself).
    Usage = 2,
    /// No usable answer within the deadline.
    Unavailable = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// The exit code for a failed operation: refusals that stand are "no", the rest (no
/// leader, no connection, no answer, outcome unknown) are "unavailable".
pub fn exit_for(error: &KvError) -> Exit {
    if error.is_refusal() {
        Exit::No
    } else {
        Exit::Unavailable
    }
}

/// A value as a person or a script reads it: the bytes as text (invalid UTF-8 replaced).
fn text(value: &Bytes) -> String {
    String::from_utf8_lossy(value).into_owned()
}

/// Where results go: text lines and tables, or one JSON object per command.
#[derive(Copy, Clone, Debug)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Text when `json` is false.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// The result of `get`: the value, or exit 1 if there is none.
    pub fn value(&self, key: &str, value: Option<&Bytes>) -> Exit {
        if self.json {
            println!("{}", json!({ "key": key, "value": value.map(text) }));
        } else {
            match value {
                Some(value) => println!("{}", text(value)),
                None => eprintln!("rsm-kv: no value at `{key}`"),
            }
        }
        if value.is_some() { Exit::Ok } else { Exit::No }
    }

    /// The result of a write that succeeded.
    pub fn done(&self, op: &str, key: &str) -> Exit {
        if self.json {
            println!("{}", json!({ "op": op, "key": key, "ok": true }));
        } else {
            println!("OK");
        }
        Exit::Ok
    }

    /// The result of `cas`: exit 1 when the value found was not the one expected.
    pub fn cas(&self, key: &str, cas: &CasOutcome) -> Exit {
        let found = cas.current.as_ref().map(text);
        if self.json {
            println!(
                "{}",
                json!({ "key": key, "swapped": cas.swapped, "found": found })
            );
        } else {
            let found = found.unwrap_or_else(|| "no value".into());
            let verdict = if cas.swapped {
                "swapped"
            } else {
                "not swapped"
            };
            println!("{verdict} (found {found})");
        }
        if cas.swapped { Exit::Ok } else { Exit::No }
    }

    /// A failed operation, on stderr as text or on stdout as JSON.
    pub fn failure(&self, error: &KvError) -> Exit {
        let exit = exit_for(error);
        if self.json {
            let outcome = if error.is_definite() {
                "failed"
            } else {
                "unknown"
            };
            println!(
                "{}",
                json!({ "error": error.to_string(), "outcome": outcome, "exit": exit as u8 })
            );
        } else {
            eprintln!("rsm-kv: {error}");
        }
        exit
    }

    /// The cluster's status: a table, or `{"servers": [...]}`. Exit 3 if no server answered.
    pub fn status(&self, statuses: &ClusterStatus) -> Exit {
        if self.json {
            println!("{}", statuses.to_json());
        } else {
            print!("{}", statuses.table());
        }
        if statuses.answered() == 0 {
            Exit::Unavailable
        } else {
            Exit::Ok
        }
    }
}

/// Every known server's answer to a status request, or why it gave none.
#[derive(Debug, Default)]
pub struct ClusterStatus {
    /// By node id: the address asked and the answer.
    pub servers: BTreeMap<NodeId, (SocketAddr, Result<ServerStatus, String>)>,
}

/// Ask every server the client knows (and those the servers know) for its status.
pub async fn cluster_status(client: &mut KvClient) -> ClusterStatus {
    let mut status = ClusterStatus::default();
    client.identify_servers().await;
    let mut asked = Vec::new();
    loop {
        let next = client
            .servers()
            .iter()
            .find(|(id, _)| !asked.contains(*id))
            .map(|(id, addr)| (*id, *addr));
        let Some((id, addr)) = next else {
            return status;
        };
        asked.push(id);
        let answer = client.status(id).await.map_err(|e| e.to_string());
        if let Ok(answer) = &answer {
            client.learn(&answer.clients);
        }
        status.servers.insert(id, (addr, answer));
    }
}

/// A role as the table prints it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Follower => "follower",
        Role::PreCandidate => "pre-candidate",
        Role::Candidate => "candidate",
        Role::Leader => "leader",
        Role::Learner => "learner",
        Role::Recovering => "recovering",
        Role::Removed => "removed",
    }
}

impl ClusterStatus {
    /// How many servers answered.
    pub fn answered(&self) -> usize {
        self.servers.values().filter(|(_, s)| s.is_ok()).count()
    }

    /// The highest commit index any server reported: how far each one's applied index
    /// lags is measured from it.
    fn commit_max(&self) -> u64 {
        self.servers
            .values()
            .filter_map(|(_, s)| s.as_ref().ok())
            .map(|s| s.commit.get())
            .max()
            .unwrap_or(0)
    }

    /// A table with a header: id, address, role, term, leader, commit, applied, lag.
    pub fn table(&self) -> String {
        let commit_max = self.commit_max();
        let mut rows = vec![
            [
                "ID", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG",
            ]
            .map(String::from)
            .to_vec(),
        ];
        let mut notes = Vec::new();
        for (id, (addr, answer)) in &self.servers {
            let row = match answer {
                Ok(s) => vec![
                    id.to_string(),
                    addr.to_string(),
                    role_name(s.role).to_string(),
                    s.epoch.get().to_string(),
                    s.leader.map_or("-".to_string(), |l| l.to_string()),
                    s.commit.get().to_string(),
                    s.applied.get().to_string(),
                    commit_max.saturating_sub(s.applied.get()).to_string(),
                ],
                Err(error) => {
                    notes.push(format!("{id}: {error}"));
                    let mut row = vec![id.to_string(), addr.to_string(), "unreachable".into()];
                    row.resize(8, "-".into());
                    row
                }
            };
            rows.push(row);
        }
        let widths: Vec<usize> = (0..8)
            .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
            .collect();
        let mut out = String::new();
        for row in &rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                // Numbers right-aligned so that digits line up; words left-aligned.
                if c >= 3 && c != 4 {
                    let _ = write!(line, "{cell:>w$}  ", w = widths[c]);
                } else {
                    let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for note in notes {
            out.push_str(&note);
            out.push('\n');
        }
        out
    }

    /// `{"servers": [{"id": 1, "address": ..., "role": "leader", ...}, ...]}`.
    pub fn to_json(&self) -> Value {
        let commit_max = self.commit_max();
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|(id, (addr, answer))| match answer {
                Ok(s) => json!({
                    "id": id.get(),
                    "address": addr.to_string(),
                    "reachable": true,
                    "role": role_name(s.role),
                    "term": s.epoch.get(),
                    "leader": s.leader.map(NodeId::get),
                    "commit": s.commit.get(),
                    "applied": s.applied.get(),
                    "lag": commit_max.saturating_sub(s.applied.get()),
                    "wal_group_commits": s.wal_syncs,
                    "wal_fsyncs": s.wal_fsyncs,
                    "wal_entries_synced": s.wal_entries_synced,
                    "client_port": s.client_port,
                }),
                Err(error) => json!({
                    "id": id.get(),
                    "address": addr.to_string(),
                    "reachable": false,
                    "error": error,
                }),
            })
            .collect();
        json!({ "servers": servers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::AttemptError;
    use crate::wire::RemoteError;
    use rsm_core::{Epoch, LogIndex, RejectReason};

    fn status(id: u64, role: Role, commit: u64, applied: u64) -> ServerStatus {
        ServerStatus {
            id: NodeId(id),
            role,
            epoch: Epoch(3),
            leader: Some(NodeId(1)),
            commit: LogIndex(commit),
            applied: LogIndex(applied),
            ..ServerStatus::default()
        }
    }

    fn cluster() -> ClusterStatus {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let mut c = ClusterStatus::default();
        c.servers.insert(
            NodeId(1),
            (addr(7001), Ok(status(1, Role::Leader, 1042, 1042))),
        );
        c.servers.insert(
            NodeId(2),
            (addr(7002), Ok(status(2, Role::Follower, 1040, 1038))),
        );
        c.servers.insert(
            NodeId(3),
            (addr(7003), Err("cannot connect to 127.0.0.1:7003".into())),
        );
        c
    }

    #[test]
    fn the_table_lines_up_and_measures_lag_from_the_highest_commit() {
        let table = cluster().table();
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].starts_with("ID  ADDRESS"), "{table}");
        assert!(
            lines[1].contains("leader") && lines[1].ends_with(" 0"),
            "{table}"
        );
        assert!(
            lines[2].contains("follower") && lines[2].ends_with(" 4"),
            "{table}"
        );
        assert!(lines[3].contains("unreachable"), "{table}");
        assert!(lines[4].contains("cannot connect"), "{table}");
        // Every row's COMMIT column ends at the same place.
        let end = lines[0].find("COMMIT").unwrap() + "COMMIT".len();
        assert_eq!(&lines[1][end - 4..end], "1042", "{table}");
    }

    #[test]
    fn json_status_names_every_field() {
        let json = cluster().to_json();
        let servers = json["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[0]["role"], "leader");
        assert_eq!(servers[1]["lag"], 4);
        assert_eq!(servers[2]["reachable"], false);
        assert_eq!(servers[0]["client_port"]["refused_oversized"], 0);
    }

    #[test]
    fn only_standing_refusals_exit_with_no() {
        let refused = KvError::Failed(AttemptError::Remote(RemoteError::Rejected(
            RejectReason::TooLarge {
                bytes: 10,
                limit_bytes: 1,
            },
        )));
        assert_eq!(exit_for(&refused), Exit::No);
        let no_leader = KvError::Failed(AttemptError::Remote(RemoteError::Rejected(
            RejectReason::NotLeader { hint: None },
        )));
        assert_eq!(exit_for(&no_leader), Exit::Unavailable);
        assert_eq!(
            exit_for(&KvError::Unknown(AttemptError::TimedOut)),
            Exit::Unavailable
        );
    }
}
