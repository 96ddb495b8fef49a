//! The `proxy` binary: nginx's command line over the library.
//!
//! `-c FILE` (default `conf/sticky.conf`), `-t` test the configuration, `-T` test and
//! print it with includes expanded, `-q` quiet test, `-v`/`-V` version (and
//! features), `-s stop|quit|reopen|reload` signal the running proxy (through the
//! `pid` file, see [`sticky_proxy::process`]), `-h` help. Messages go to stderr in nginx's shape
//! (`proxy: [emerg] MESSAGE in FILE:LINE`, exit code 1). Without `-t`/`-T` the
//! configuration is loaded, logging is set up from `error_log`, and
//! [`sticky_proxy::server::run_with`] serves until stopped (signals: see
//! [`sticky_proxy::process`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use sticky_proxy::config::ast::Directive;
use sticky_proxy::config::{self, build, include, parse, Config, ConfigError, ConfigWarning};
use sticky_proxy::process::{self, Command};

/// What `-V` lists besides the version.
const FEATURES: &[&str] = &[
    "core: worker_processes, worker_rlimit_nofile, error_log, pid, events, include (globs)",
    "http: server, listen, server_name (exact, wildcard, regex), location (=, ^~, prefix, ~, ~*), return",
    "proxy: proxy_pass, proxy_set_header, proxy_hide_header, proxy_pass_header, timeouts, proxy_next_upstream",
    "upstream: server (weight, max_fails, fail_timeout, down, backup, id), keepalive, smooth weighted round robin",
    "session_sticky: mode=insert|rewrite|prefix, hash=plain|md5, maxidle, maxlife, fallback, session_sticky_hide_cookie",
    "files: root, alias, index, try_files, autoindex, types, etag, Range, disable_symlinks",
    "compression: gzip (gzip_proxied, gzip_static), brotli",
    "log: access_log, log_format (nginx variables, $sticky_sid, $sticky_status), error_log levels",
    "signals: -s reload|quit|stop|reopen; SIGHUP reload, SIGQUIT graceful stop, SIGUSR1 reopen",
];

#[derive(Parser, Debug)]
#[command(
    name = "proxy",
    about = "A reverse proxy speaking nginx's configuration language with Tengine's session_sticky",
    disable_version_flag = true
)]
struct Cli {
    /// Configuration file.
    #[arg(short = 'c', value_name = "FILE", default_value = "conf/sticky.conf")]
    conf: PathBuf,
    /// Test the configuration and exit.
    #[arg(short = 't')]
    test: bool,
    /// Test the configuration, print it (includes expanded) and exit.
    #[arg(short = 'T')]
    dump: bool,
    /// Suppress non-error messages during configuration testing.
    #[arg(short = 'q')]
    quiet: bool,
    /// Show the version and exit.
    #[arg(short = 'v')]
    version: bool,
    /// Show the version and the supported features, and exit.
    #[arg(short = 'V')]
    features: bool,
    /// Send a signal to the running proxy (found through the `pid` file):
    /// stop (SIGTERM), quit (SIGQUIT), reopen (SIGUSR1), reload (SIGHUP).
    #[arg(short = 's', value_name = "SIGNAL", value_parser = parse_command)]
    signal: Option<Command>,
}

fn parse_command(s: &str) -> Result<Command, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if cli.version || cli.features {
        eprintln!("proxy version: sticky-proxy/{}", env!("CARGO_PKG_VERSION"));
        if cli.features {
            for feature in FEATURES {
                eprintln!("{feature}");
            }
        }
        if !cli.test && !cli.dump {
            return ExitCode::SUCCESS;
        }
    }
    if cli.test || cli.dump {
        test_config(&cli)
    } else if let Some(command) = cli.signal {
        signal(&cli.conf, command)
    } else {
        run(&cli.conf)
    }
}

/// Reads, expands and builds the configuration, keeping the tree for `-T`.
fn load(path: &Path) -> Result<(Vec<Directive>, Config, Vec<ConfigWarning>), ConfigError> {
    let tree = include::load(path)?;
    let (config, warnings) = build::build(path, &tree)?;
    Ok((tree, config, warnings))
}

/// `-t` / `-T`: nginx's messages and exit codes.
fn test_config(cli: &Cli) -> ExitCode {
    let file = cli.conf.display();
    match load(&cli.conf) {
        Ok((tree, _config, warnings)) => {
            if !cli.quiet {
                for warning in &warnings {
                    eprintln!("proxy: [warn] {warning}");
                }
                eprintln!("proxy: the configuration file {file} syntax is ok");
                eprintln!("proxy: configuration file {file} test is successful");
            }
            if cli.dump {
                print!("# configuration file {file}:\n{}", parse::dump(&tree));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("proxy: [emerg] {e}");
            eprintln!("proxy: configuration file {file} test failed");
            ExitCode::FAILURE
        }
    }
}

/// `-s SIGNAL`: reads the configuration for its `pid` file and signals the
/// process named there.
fn signal(path: &Path, command: Command) -> ExitCode {
    let config = match config::load(path) {
        Ok((config, _warnings)) => config,
        Err(e) => {
            eprintln!("proxy: [emerg] {e}");
            return ExitCode::FAILURE;
        }
    };
    match process::signal_running(&config, command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("proxy: [error] {message}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the configuration, sets up logging and serves.
fn run(path: &Path) -> ExitCode {
    let (mut config, warnings) = match load(path) {
        Ok((_tree, config, warnings)) => (config, warnings),
        Err(e) => {
            eprintln!("proxy: [emerg] {e}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &warnings {
        eprintln!("proxy: [warn] {warning}");
    }
    let error_log = match sticky_proxy::log::init_error_log(&config.main.error_log, &config.file) {
        Ok(handle) => handle,
        Err(message) => {
            eprintln!("proxy: [emerg] {message}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(wanted) = config.main.worker_rlimit_nofile {
        match process::set_nofile(wanted) {
            Ok(None) => {}
            Ok(Some(warning)) => tracing::warn!("{warning}"),
            Err(e) => tracing::error!("{e} (ignored)"),
        }
    }
    // The pid file is found relative to the configuration, as `-s` looks for it.
    config.main.pid = config
        .main
        .pid
        .as_deref()
        .map(|pid| sticky_proxy::log::resolve_path(&config.file, pid));
    match sticky_proxy::server::run_with(config, Some(error_log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("proxy: [emerg] {e}");
            ExitCode::FAILURE
        }
    }
}
