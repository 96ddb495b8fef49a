//! The `proxy` command line as a user meets it: `-t`, `-T`, `-q`, `-v`, `-V`, `-h`,
//! nginx's messages on stderr and exit codes. Each test writes its configuration
//! into its own scratch directory; nothing listens.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sticky-cli-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch(dir)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.0.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&path, text).expect("write config");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn proxy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_proxy"))
        .args(args)
        .output()
        .expect("run proxy")
}

fn with_conf(flags: &[&str], conf: &Path) -> Output {
    let conf = conf.to_str().expect("utf-8 path");
    let mut args = flags.to_vec();
    args.extend(["-c", conf]);
    proxy(&args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small but complete configuration, split over an include.
const VALID: &str = "\
worker_processes 1;
events { worker_connections 64; }
http {
    include upstreams/*.conf;
    log_format main '$remote_addr \"$request\" $status $sticky_status';
    server {
        listen 127.0.0.1:8080;
        server_name example.com;
        location / {
            proxy_set_header Host $host;
            proxy_pass http://app;
        }
        location = /health {
            return 200 \"ok\\n\";
        }
    }
}
";

const UPSTREAM: &str = "\
upstream app {
    session_sticky cookie=sid mode=insert fallback=on;
    server 127.0.0.1:8081;
    server 127.0.0.1:8082 weight=2;
}
";

fn valid_conf(dir: &Scratch) -> PathBuf {
    dir.write("upstreams/app.conf", UPSTREAM);
    dir.write("sticky.conf", VALID)
}

#[test]
fn test_flag_prints_nginx_success_lines() {
    let dir = Scratch::new("ok");
    let conf = valid_conf(&dir);
    let out = with_conf(&["-t"], &conf);
    let file = conf.display();
    assert_eq!(
        stderr(&out),
        format!(
            "proxy: the configuration file {file} syntax is ok\n\
             proxy: configuration file {file} test is successful\n"
        )
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
}

#[test]
fn quiet_test_prints_nothing_on_success() {
    let dir = Scratch::new("quiet");
    let conf = valid_conf(&dir);
    let out = with_conf(&["-t", "-q"], &conf);
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn test_flag_reports_errors_with_file_line_and_exit_code() {
    let dir = Scratch::new("fail");
    let cases: &[(&str, &str)] = &[
        ("http {\n}\n}\n", "unexpected \"}\" in {main}:3"),
        (
            "http {\n",
            "unexpected end of file, expecting \"}\" in {main}:2",
        ),
        (
            "events { worker_connections 1 }",
            "unexpected \"}\" in {main}:1",
        ),
        (
            "a \"b;",
            "unexpected end of file, expecting \";\" or \"}\" in {main}:1",
        ),
        (
            "\n\ninclude missing.conf;",
            "open() \"{dir}/missing.conf\" failed (2: No such file or directory) in {main}:3",
        ),
        (
            "include sticky.conf;",
            "include cycle: \"{main}\" -> \"{main}\" in {main}:1",
        ),
    ];
    for (text, message) in cases {
        let conf = dir.write("sticky.conf", text);
        for quiet in [false, true] {
            let flags: &[&str] = if quiet { &["-t", "-q"] } else { &["-t"] };
            let out = with_conf(flags, &conf);
            let message = message
                .replace("{main}", &conf.display().to_string())
                .replace("{dir}", &dir.0.display().to_string());
            assert_eq!(
                stderr(&out),
                format!(
                    "proxy: [emerg] {message}\nproxy: configuration file {} test failed\n",
                    conf.display()
                ),
                "config {text:?}"
            );
            assert_eq!(out.status.code(), Some(1), "config {text:?}");
        }
    }
}

#[test]
fn missing_config_file_fails_like_nginx() {
    let out = proxy(&["-t", "-c", "/nonexistent-sticky/sticky.conf"]);
    assert_eq!(
        stderr(&out),
        "proxy: [emerg] open() \"/nonexistent-sticky/sticky.conf\" failed \
         (2: No such file or directory)\n\
         proxy: configuration file /nonexistent-sticky/sticky.conf test failed\n"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn running_with_a_broken_config_exits_with_emerg() {
    let dir = Scratch::new("run-broken");
    let conf = dir.write("sticky.conf", "http {");
    let out = with_conf(&[], &conf);
    assert_eq!(
        stderr(&out),
        format!(
            "proxy: [emerg] unexpected end of file, expecting \"}}\" in {}:1\n",
            conf.display()
        )
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn dump_flag_prints_expanded_config_that_tests_ok_again() {
    let dir = Scratch::new("dump");
    let conf = valid_conf(&dir);
    let out = with_conf(&["-T"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let header = format!("# configuration file {}:\n", conf.display());
    assert!(text.starts_with(&header), "{text}");
    // Includes are expanded: the upstream appears inline, no include remains.
    assert!(text.contains("    upstream app {\n"), "{text}");
    assert!(!text.contains("include"), "{text}");
    assert!(text.contains("return 200 \"ok\\n\";"), "{text}");

    // The dump is itself a valid configuration, and dumps to the same text.
    let again = dir.write("dumped.conf", &text);
    let out2 = with_conf(&["-T"], &again);
    assert_eq!(out2.status.code(), Some(0), "{}", stderr(&out2));
    let text2 = stdout(&out2);
    let header2 = format!("# configuration file {}:\n", again.display());
    assert_eq!(
        text2.strip_prefix(&header2),
        text.strip_prefix(&header),
        "second dump differs"
    );
}

#[test]
fn version_flags_print_version_and_features() {
    let version = format!(
        "proxy version: sticky-proxy/{}\n",
        env!("CARGO_PKG_VERSION")
    );
    let out = proxy(&["-v"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), version);

    let out = proxy(&["-V"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stderr(&out);
    assert!(text.starts_with(&version), "{text}");
    assert!(text.contains("session_sticky"), "{text}");
    assert!(text.contains("include"), "{text}");
}

#[test]
fn help_and_bad_options() {
    let out = proxy(&["-h"]);
    assert_eq!(out.status.code(), Some(0));
    let help = stdout(&out);
    for flag in ["-c <FILE>", "-t", "-T", "-q", "-v", "-V", "-h"] {
        assert!(help.contains(flag), "help lacks {flag}: {help}");
    }

    let out = proxy(&["-x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("'-x'"), "{}", stderr(&out));
}

#[test]
fn warnings_print_before_success_and_quiet_hides_them() {
    let dir = Scratch::new("warn");
    valid_conf(&dir);
    let conf = dir.write(
        "sticky.conf",
        &VALID.replace("http {\n", "http {\n    sendfile on;\n"),
    );
    let file = conf.display();
    let out = with_conf(&["-t"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stderr(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("proxy: [warn] \"sendfile\""), "{text}");
    assert!(lines[0].ends_with(&format!(" in {file}:4")), "{text}");
    assert_eq!(
        lines[1],
        format!("proxy: the configuration file {file} syntax is ok")
    );

    let out = with_conf(&["-t", "-q"], &conf);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stderr(&out), "");
}

/// A configuration shipped in `conf/`.
fn shipped(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("conf").join(rel)
}

#[test]
fn shipped_configs_test_ok_and_their_dumps_test_ok_again() {
    let dir = Scratch::new("shipped");
    for rel in ["sticky.conf", "tengine/nginx.conf"] {
        let conf = shipped(rel);
        let out = with_conf(&["-T", "-q"], &conf);
        assert_eq!(out.status.code(), Some(0), "{rel}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{rel}");
        let text = stdout(&out);
        let header = format!("# configuration file {}:\n", conf.display());
        let body = text.strip_prefix(&header).expect("dump header");

        let again = dir.write("dumped.conf", body);
        let out2 = with_conf(&["-T", "-q"], &again);
        assert_eq!(out2.status.code(), Some(0), "{rel}: {}", stderr(&out2));
        let header2 = format!("# configuration file {}:\n", again.display());
        assert_eq!(
            stdout(&out2).strip_prefix(&header2),
            Some(body),
            "{rel}: the dump of the dump differs"
        );
    }
}
