//! The `proxy` binary: nginx's command line over the library.
//!
//! `-c FILE` (default `conf/sticky.conf`), `-p PREFIX` (relative `-c`, `pid` and log
//! paths resolve against it), `-e FILE|stderr` (the error log until and unless the
//! configuration names one; start-up errors are also written there), `-g
//! DIRECTIVES` (main-context directives read before the file), `-t` test the
//! configuration, `-T` test and print every file read, verbatim, each under
//! `# configuration file PATH:`, `-q` quiet test, `-v`/`-V` version (and
//! features), `-s stop|quit|reopen|reload` signal the running proxy (through the
//! `pid` file, see [`sticky_proxy::process`]), `-h` help. Messages go to stderr in nginx's shape
//! (`proxy: [emerg] MESSAGE in FILE:LINE`, exit code 1). Without `-t`/`-T` the
//! configuration is loaded, logging is set up from `error_log`, and
//! [`sticky_proxy::server::run_with`] serves until stopped (signals: see
//! [`sticky_proxy::process`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use sticky_proxy::config::include::SourceFile;
use sticky_proxy::config::{self, include, Config, ConfigError, ConfigWarning, LoadOptions};
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
    /// Configuration file (relative to the prefix when `-p` is given).
    #[arg(short = 'c', value_name = "FILE", default_value = "conf/sticky.conf")]
    conf: PathBuf,
    /// Prefix path: relative `-c`, `pid`, `error_log` and `access_log` paths
    /// resolve against it (default: the directory of the configuration file).
    #[arg(short = 'p', value_name = "PREFIX")]
    prefix: Option<PathBuf>,
    /// Error log file (or `stderr`) used while starting and when the
    /// configuration sets no `error_log`.
    #[arg(short = 'e', value_name = "FILE")]
    error_log: Option<String>,
    /// Global directives set out of the configuration file (e.g. 'daemon off;').
    #[arg(short = 'g', value_name = "DIRECTIVES")]
    globals: Option<String>,
    /// Test the configuration and exit.
    #[arg(short = 't')]
    test: bool,
    /// Test the configuration, print every file read and exit.
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
    let options = LoadOptions {
        prefix: cli.prefix.clone(),
        globals: cli.globals.clone(),
        error_log: cli.error_log.clone(),
    };
    // nginx resolves a relative `-c` against the prefix, and names the file by
    // its full path in messages and `-T`.
    let conf = match &cli.prefix {
        Some(prefix) if cli.conf.is_relative() => prefix.join(&cli.conf),
        _ => cli.conf.clone(),
    };
    let conf = std::path::absolute(&conf).unwrap_or(conf);
    if cli.test || cli.dump {
        test_config(&cli, &conf, &options)
    } else if let Some(command) = cli.signal {
        signal(&conf, &options, command)
    } else {
        run(&conf, &options)
    }
}

/// Reads, expands and builds the configuration, keeping the files read for `-T`.
fn load(
    path: &Path,
    options: &LoadOptions,
) -> Result<(Vec<SourceFile>, Config, Vec<ConfigWarning>), ConfigError> {
    let (tree, sources) = include::load_with_sources(path)?;
    let tree = config::with_globals(tree, options)?;
    let (config, warnings) = config::build_with(path, &tree, options)?;
    Ok((sources, config, warnings))
}

/// `-t` / `-T`: nginx's messages and exit codes.
fn test_config(cli: &Cli, conf: &Path, options: &LoadOptions) -> ExitCode {
    let file = conf.display();
    match load(conf, options) {
        Ok((sources, _config, warnings)) => {
            if !cli.quiet {
                for warning in &warnings {
                    eprintln!("proxy: [warn] {warning}");
                }
                eprintln!("proxy: the configuration file {file} syntax is ok");
                eprintln!("proxy: configuration file {file} test is successful");
            }
            if cli.dump {
                // nginx's -T: each file as read, once, under its own header.
                let mut out = Vec::new();
                for source in &sources {
                    out.extend_from_slice(
                        format!("# configuration file {}:\n", source.path.display()).as_bytes(),
                    );
                    out.extend_from_slice(&source.text);
                    out.push(b'\n');
                }
                if let Err(e) = std::io::Write::write_all(&mut std::io::stdout(), &out) {
                    eprintln!("proxy: [emerg] write() to stdout failed ({e})");
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            emerg(conf, options, &e.to_string());
            eprintln!("proxy: configuration file {file} test failed");
            ExitCode::FAILURE
        }
    }
}

/// An `[emerg]` message: on stderr and, with `-e FILE`, also appended to FILE (a
/// relative FILE under the prefix, as the error log) in the error log's line
/// format, as nginx writes start-up errors to both.
fn emerg(conf: &Path, options: &LoadOptions, message: &str) {
    eprintln!("proxy: [emerg] {message}");
    let Some(path) = options.error_log.as_deref().filter(|p| *p != "stderr") else {
        return;
    };
    let prefix = config::prefix_for(conf, options);
    let path = sticky_proxy::log::resolve_path(&prefix, Path::new(path));
    let line = format!(
        "{} [emerg] {}#0: {message}\n",
        sticky_proxy::timefmt::error_log(std::time::SystemTime::now()).as_str(),
        std::process::id()
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, line.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "proxy: [alert] could not open error log file: open() \"{}\" failed ({e})",
            path.display()
        );
    }
}

/// `-s SIGNAL`: reads the configuration for its `pid` file and signals the
/// process named there.
fn signal(path: &Path, options: &LoadOptions, command: Command) -> ExitCode {
    let config = match config::load_with(path, options) {
        Ok((config, _warnings)) => config,
        Err(e) => {
            emerg(path, options, &e.to_string());
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
fn run(path: &Path, options: &LoadOptions) -> ExitCode {
    let (mut config, warnings) = match config::load_with(path, options) {
        Ok(loaded) => loaded,
        Err(e) => {
            emerg(path, options, &e.to_string());
            return ExitCode::FAILURE;
        }
    };
    for warning in &warnings {
        eprintln!("proxy: [warn] {warning}");
    }
    let error_log =
        match sticky_proxy::log::init_error_log(&config.main.error_log, &config.prefix()) {
            Ok(handle) => handle,
            Err(message) => {
                emerg(path, options, &message);
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
    // The pid file is found relative to the prefix, as `-s` looks for it.
    config.main.pid = config
        .main
        .pid
        .as_deref()
        .map(|pid| config.resolve_path(pid));
    match sticky_proxy::server::run_with(config, Some(error_log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("proxy: [emerg] {e}");
            ExitCode::FAILURE
        }
    }
}
