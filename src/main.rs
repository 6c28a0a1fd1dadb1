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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let state = match server::check(&cli.config) {
        Ok(state) => state,
        Err(e) => {
            eprintln!("mcpgate: {}: {e}", cli.config.display());
            return ExitCode::FAILURE;
        }
    };
    if cli.test {
        println!("mcpgate: {}: configuration is valid", cli.config.display());
        return ExitCode::SUCCESS;
    }
    raise_open_files_limit();
    let opts = StartOptions {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
    };
    match server::build(state, &opts) {
        Ok(server) => server.run_forever(),
        Err(e) => {
            eprintln!("mcpgate: {}: {e}", cli.config.display());
            ExitCode::FAILURE
        }
    }
}

/// Every open stream holds two descriptors (client and upstream): take all the process may
/// have, as nginx does with `worker_rlimit_nofile`, instead of the shell's soft 1,024.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a stack value.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
