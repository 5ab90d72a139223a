//! `rsm-kv`: the command-line client (get, put, delete, compare-and-swap, status).

use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use rsm_kv::flags::{Flags, NodeAddrs};
use rsm_kv::{ClientConfig, KvClient};

const USAGE: &str = "\
usage: rsm-kv --servers 1=HOST:PORT,2=HOST:PORT,... [--timeout-ms 10000] COMMAND
commands:
  get KEY                   print the value (or `(nil)`)
  put KEY VALUE             write VALUE at KEY
  delete KEY                remove KEY
  cas KEY EXPECTED NEW      set KEY to NEW if it holds EXPECTED; `-` means absent
                            (as EXPECTED: the key must be absent; as NEW: remove it)
  status                    print every server's role, epoch, leader and disk counters
--servers lists the servers' client addresses (their --client-listen).";

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("rsm-kv: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<ExitCode, String> {
    let mut flags = Flags::parse(std::env::args().skip(1), &[]).map_err(|e| e.to_string())?;
    let servers: NodeAddrs = flags.require("servers").map_err(|e| e.to_string())?;
    let timeout_ms: u64 = flags
        .get_or("timeout-ms", 10_000)
        .map_err(|e| e.to_string())?;
    flags.finish().map_err(|e| e.to_string())?;
    let mut config = ClientConfig::new(servers.0);
    config.op_timeout = Duration::from_millis(timeout_ms);
    let words = flags.positional;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(execute(KvClient::new(config), &words))
}

fn bytes(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn optional(s: &str) -> Option<Bytes> {
    (s != "-").then(|| bytes(s))
}

fn show(value: Option<&Bytes>) -> String {
    match value {
        Some(v) => String::from_utf8_lossy(v).into_owned(),
        None => "(nil)".to_string(),
    }
}

async fn execute(mut client: KvClient, words: &[String]) -> Result<ExitCode, String> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let outcome = match words.as_slice() {
        ["get", key] => client.get(bytes(key)).await.map(|v| show(v.as_ref())),
        ["put", key, value] => client
            .put(bytes(key), bytes(value))
            .await
            .map(|()| "OK".into()),
        ["delete", key] => client.delete(bytes(key)).await.map(|()| "OK".into()),
        ["cas", key, expected, new] => client
            .cas(bytes(key), optional(expected), optional(new))
            .await
            .map(|cas| {
                let verdict = if cas.swapped { "swapped" } else { "refused" };
                format!("{verdict} (found {})", show(cas.current.as_ref()))
            }),
        ["status"] => {
            let ids: Vec<_> = client_ids(&client);
            for id in ids {
                match client.status(id).await {
                    Ok(s) => println!(
                        "{id}: {:?} epoch {} leader {} applied {} | wal: {} group commits, {} fsyncs, {} entries synced",
                        s.role,
                        s.epoch.get(),
                        s.leader.map_or("none".to_string(), |l| l.to_string()),
                        s.applied.get(),
                        s.wal_syncs,
                        s.wal_fsyncs,
                        s.wal_entries_synced
                    ),
                    Err(error) => println!("{id}: unreachable ({error})"),
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        _ => return Err("expected a command".into()),
    };
    match outcome {
        Ok(text) => {
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("rsm-kv: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn client_ids(client: &KvClient) -> Vec<rsm_core::NodeId> {
    client.servers().keys().copied().collect()
}
