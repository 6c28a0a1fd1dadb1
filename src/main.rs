//! The `mcpgate` command: parse the flags, load the config, run the server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mcpgate::server::{self, StartOptions};

/// An OAuth gateway for MCP servers.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The configuration file.
    #[arg(short, long, default_value = "/etc/mcpgate/mcpgate.yaml")]
    config: PathBuf,
    /// Check the configuration and exit: 0 if it loads, 1 with the reason if not.
    #[arg(short, long)]
    test: bool,
    /// Take over the listening sockets of a running instance (graceful upgrade; send the
    /// old one SIGQUIT).
    #[arg(short, long)]
    upgrade: bool,
    /// Run in the background.
    #[arg(short, long)]
    daemon: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    mcpgate::logging::init(!cli.daemon);
    let state = match server::check(&cli.config) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("mcpgate: {}: {e}", cli.config.display());
            return ExitCode::FAILURE;
        }
    };
    if cli.test {
        for warning in state.snapshot().config.warnings() {
            eprintln!("mcpgate: {}: warning: {warning}", cli.config.display());
        }
        println!("mcpgate: {}: configuration is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    server::raise_open_files_limit();
    let snapshot = state.snapshot();
    let opts = StartOptions {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
    };
    match server::build(state, &opts) {
        Ok(server) => {
            mcpgate::banner::started(&snapshot, &cli.config);
            server.run_forever()
        }
        Err(e) => {
            eprintln!("mcpgate: {}: {e}", cli.config.display());
            ExitCode::FAILURE
        }
    }
}
