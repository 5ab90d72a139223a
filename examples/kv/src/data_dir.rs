//! The server's data directory and its identity stamp.
//!
//! A data directory is stamped when it is created with the cluster id and the node id it
//! belongs to (the `IDENTITY` file, replaced atomically). A server refuses a directory
//! stamped for another cluster or node, and it never treats an empty directory as an
//! existing member's: starting with no data is explicit ([`StartMode::Bootstrap`] for a
//! new cluster, [`StartMode::Join`] for a node the cluster has already added), because a
//! member that restarts without the log and the vote it had promised can undo committed
//! writes. A member that lost its disk must rejoin as a new learner (see the README).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use rsm_core::NodeId;

/// The stamp's file name inside the data directory.
pub const IDENTITY_FILE: &str = "IDENTITY";
/// The write-ahead log's directory inside the data directory.
pub const WAL_DIR: &str = "wal";
const IDENTITY_TEMP_FILE: &str = "IDENTITY.tmp";
const IDENTITY_HEADER: &str = "rsm data directory v1";

/// How a server may treat its data directory: [`StartMode::Restart`] (no flag),
/// [`StartMode::Bootstrap`] (`--bootstrap`) or [`StartMode::Join`] (`--join`), checked
/// with the contract's rule ([`StartMode::check`]).
pub use rsm_core::StartMode;

/// The command-line flag that asks for `mode`.
fn flag(mode: StartMode) -> &'static str {
    match mode {
        StartMode::Restart => "no start flag",
        StartMode::Bootstrap => "--bootstrap",
        StartMode::Join => "--join",
    }
}

/// Which cluster and node a data directory belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The cluster id (`--cluster-id`).
    pub cluster_id: u64,
    /// The node id (`--id`).
    pub node_id: NodeId,
}

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cluster {} node {}", self.cluster_id, self.node_id.get())
    }
}

const REJOIN: &str = "if this node was a member and its disk was lost, wiped or restored \
    from an old copy, do not restart it on this directory: remove it from the cluster, add \
    it back as a learner, start it with --join on an empty directory, let it catch up, then \
    promote it (README: \"Replacing a node whose disk lost data\")";

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// The directory belongs to another cluster or node.
    #[error(
        "data directory {dir} belongs to {found}, not {expected} (--cluster-id, --id): \
         point --data-dir at this node's own directory"
    )]
    Mismatch {
        /// The data directory.
        dir: PathBuf,
        /// What its stamp says.
        found: Identity,
        /// What the flags say.
        expected: Identity,
    },
    /// The directory is empty and no start flag says what to do with it.
    #[error(
        "data directory {dir} is empty or missing: pass --bootstrap to start a new cluster, \
         or --join to start a node the cluster has already added; {REJOIN}"
    )]
    Blank {
        /// The data directory.
        dir: PathBuf,
    },
    /// A start flag was given for a directory that already holds a member's data.
    #[error(
        "{flag} is for an empty data directory, but {dir} already holds the data of {found}; \
         restart it without {flag}"
    )]
    NotEmpty {
        /// The data directory.
        dir: PathBuf,
        /// The flag given.
        flag: &'static str,
        /// What its stamp says.
        found: Identity,
    },
    /// The stamp is there but the write-ahead log is not: the node's durable state is gone.
    #[error(
        "data directory {dir} is stamped for {found} but its write-ahead log {wal} is missing; {REJOIN}"
    )]
    LogMissing {
        /// The data directory.
        dir: PathBuf,
        /// The missing log directory.
        wal: PathBuf,
        /// What the stamp says.
        found: Identity,
    },
    /// The directory holds files but no stamp (damaged, or not an rsm data directory).
    #[error(
        "data directory {dir} is not empty but has no {IDENTITY_FILE} stamp: it is not this \
         node's data directory, or it was damaged; {REJOIN}"
    )]
    Unstamped {
        /// The data directory.
        dir: PathBuf,
    },
    /// The stamp does not parse.
    #[error("identity stamp {path} is damaged: {reason}")]
    BadStamp {
        /// The stamp file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file operation failed.
    #[error("data directory: I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Check `dir` against `identity` and `mode`, stamping it if it is new. Returns the
/// write-ahead log's directory.
pub fn prepare(dir: &Path, identity: Identity, mode: StartMode) -> Result<PathBuf, DataDirError> {
    let wal = dir.join(WAL_DIR);
    let stamp = dir.join(IDENTITY_FILE);
    if let Some(found) = read_stamp(&stamp)? {
        if found != identity {
            return Err(DataDirError::Mismatch {
                dir: dir.to_owned(),
                found,
                expected: identity,
            });
        }
        if mode.check(false).is_err() {
            return Err(DataDirError::NotEmpty {
                dir: dir.to_owned(),
                flag: flag(mode),
                found,
            });
        }
        // An empty log directory is as good as none; what is in a non-empty one is the
        // log's to judge when it opens.
        let has_log = fs::read_dir(&wal).is_ok_and(|mut d| d.next().is_some());
        if !has_log {
            return Err(DataDirError::LogMissing {
                dir: dir.to_owned(),
                wal,
                found,
            });
        }
        return Ok(wal);
    }
    let empty = match fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(io(dir)(e)),
    };
    if !empty {
        return Err(DataDirError::Unstamped {
            dir: dir.to_owned(),
        });
    }
    if mode.check(true).is_err() {
        return Err(DataDirError::Blank {
            dir: dir.to_owned(),
        });
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    write_stamp(dir, identity)?;
    Ok(wal)
}

fn read_stamp(path: &Path) -> Result<Option<Identity>, DataDirError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let bad = |reason: &str| DataDirError::BadStamp {
        path: path.to_owned(),
        reason: reason.to_string(),
    };
    let mut lines = text.lines();
    if lines.next() != Some(IDENTITY_HEADER) {
        return Err(bad("it does not start with the expected header"));
    }
    let mut field = |name: &str| -> Result<u64, DataDirError> {
        lines
            .next()
            .and_then(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| bad(&format!("no valid `{name}` line")))
    };
    let cluster_id = field("cluster_id =")?;
    let node_id = NodeId(field("node_id =")?);
    Ok(Some(Identity {
        cluster_id,
        node_id,
    }))
}

/// Write the stamp atomically: temporary file, sync, rename, sync the directory.
fn write_stamp(dir: &Path, identity: Identity) -> Result<(), DataDirError> {
    let temp = dir.join(IDENTITY_TEMP_FILE);
    let text = format!(
        "{IDENTITY_HEADER}\ncluster_id = {}\nnode_id = {}\n",
        identity.cluster_id,
        identity.node_id.get()
    );
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .map_err(io(&temp))?;
    let stamp = dir.join(IDENTITY_FILE);
    fs::rename(&temp, &stamp).map_err(io(&stamp))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: Identity = Identity {
        cluster_id: 7,
        node_id: NodeId(2),
    };

    #[test]
    fn an_empty_directory_needs_an_explicit_start_and_is_stamped() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("n2");
        let err = prepare(&dir, ME, StartMode::Restart).unwrap_err();
        assert!(matches!(err, DataDirError::Blank { .. }), "{err}");
        assert!(err.to_string().contains("--bootstrap") && err.to_string().contains("learner"));
        let wal = prepare(&dir, ME, StartMode::Bootstrap).unwrap();
        assert_eq!(read_stamp(&dir.join(IDENTITY_FILE)).unwrap(), Some(ME));
        // Stamped but the log never got written: not an existing member's directory.
        let err = prepare(&dir, ME, StartMode::Restart).unwrap_err();
        assert!(matches!(err, DataDirError::LogMissing { .. }), "{err}");
        fs::create_dir_all(&wal).unwrap();
        fs::write(wal.join("MANIFEST"), b"x").unwrap();
        assert_eq!(prepare(&dir, ME, StartMode::Restart).unwrap(), wal);
        for mode in [StartMode::Bootstrap, StartMode::Join] {
            let err = prepare(&dir, ME, mode).unwrap_err();
            assert!(matches!(err, DataDirError::NotEmpty { .. }), "{err}");
        }
    }

    #[test]
    fn a_directory_of_another_node_or_cluster_is_refused() {
        let root = tempfile::tempdir().unwrap();
        prepare(root.path(), ME, StartMode::Join).unwrap();
        for other in [
            Identity {
                cluster_id: 8,
                ..ME
            },
            Identity {
                node_id: NodeId(3),
                ..ME
            },
        ] {
            let err = prepare(root.path(), other, StartMode::Restart).unwrap_err();
            assert!(matches!(err, DataDirError::Mismatch { .. }), "{err}");
            assert!(err.to_string().contains(&root.path().display().to_string()));
        }
    }

    #[test]
    fn unstamped_or_damaged_directories_are_refused() {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("something"), b"x").unwrap();
        let err = prepare(root.path(), ME, StartMode::Bootstrap).unwrap_err();
        assert!(matches!(err, DataDirError::Unstamped { .. }), "{err}");
        fs::write(root.path().join(IDENTITY_FILE), b"garbage").unwrap();
        let err = prepare(root.path(), ME, StartMode::Restart).unwrap_err();
        assert!(matches!(err, DataDirError::BadStamp { .. }), "{err}");
    }
}
