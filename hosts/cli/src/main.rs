//! `mdmsync`: the operator's command line. Everything is in the library; see `docs/cli.md`.

fn main() -> std::process::ExitCode {
    mdmsync_cli::run()
}
