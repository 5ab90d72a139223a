//! `rsm-kv-server`: one replica of the replicated key-value service.

fn main() -> std::process::ExitCode {
    rsm_kv::server_main(std::env::args().skip(1))
}
