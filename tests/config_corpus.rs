//! The real-world corpus: every `tests/configs/real/NAME.conf` (nginx and Tengine
//! configurations from public repositories, first line citing the source, only
//! environment edits) is loaded with `proxy -t`, and the outcome must be the one
//! [`CORPUS`] records: it loads, or it fails naming the directive it fails on,
//! with the work that directive is waiting for. When nginx is installed, `nginx
//! -t` runs on the same file and must agree with the nginx column.
//!
//! A file whose second line is `# snippet: included in http {} by the corpus
//! test` is a site file (a `server {}` and its neighbours): it is loaded as
//! `events {} http { include FILE; }`. Each run works on a copy of the corpus
//! directory, so relative paths (`mime.types`, `certs/`, `htpasswd`, included
//! files) resolve the same for the proxy and for nginx.
//!
//! **Updating the table** as features land: one line per file; change the
//! second column to `LOADS` or to the directive it now stops at.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::nginx_binary;

/// How `proxy -t` must end on a file.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Exit 0. Lines move here as the work they wait for lands.
    Loads,
    /// Exit 1, the `[emerg]` naming `"DIRECTIVE"` (or, for an unquoted message
    /// such as `invalid URL prefix`, being it); the second text says which
    /// work it waits for.
    FailsOn(&'static str, &'static str),
}

const LOADS: Expect = Expect::Loads;

const fn fails(directive: &'static str, waiting_for: &'static str) -> Expect {
    Expect::FailsOn(directive, waiting_for)
}

/// What `nginx -t` (1.22, without Tengine's modules) says, checked when nginx is
/// installed: `Ok` or a part of its error message.
#[derive(Debug, Clone, Copy)]
enum Nginx {
    Ok,
    Fails(&'static str),
}

// Areas, for the second column.
const PROXY: &str = "proxy details: proxy_redirect, proxy_cache, ... (issue 17, confc)";
const TENGINE_DSO: &str = "Tengine's dso block (dynamic modules; not planned)";
const LUA: &str = "OpenResty's *_by_lua_block body is Lua, not nginx syntax (nginx without the module stops earlier)";

/// One line per corpus file: name, our outcome, nginx's.
#[rustfmt::skip]
const CORPUS: &[(&str, Expect, Nginx)] = &[
    ("dify",                          LOADS,                                 Nginx::Ok),
    ("gitlab",                        LOADS, Nginx::Ok),
    ("grafana-auth-proxy",            LOADS,       Nginx::Ok),
    ("grafana-login-only",            LOADS,       Nginx::Ok),
    ("grafana-prometheus-basic-auth", LOADS,        Nginx::Ok),
    ("grafana-serve-from-sub-path",   LOADS,       Nginx::Ok),
    ("label-studio",                  LOADS, Nginx::Ok),
    ("label-studio-subdomain",        LOADS,       Nginx::Ok),
    ("label-studio-subpath",          LOADS,       Nginx::Ok),
    ("mastodon",                      fails("proxy_cache_path", PROXY), Nginx::Ok),
    ("mattermost",                    fails("proxy_cache_path", PROXY),     Nginx::Ok),
    ("mattermost-without-ssl",        fails("proxy_cache_path", PROXY),     Nginx::Ok),
    ("minio-1-node",                  LOADS,             Nginx::Ok),
    ("minio-4-node",                  LOADS,             Nginx::Ok),
    ("minio-upgrade-tests",           LOADS, Nginx::Ok),
    ("netbox",                        LOADS,                 Nginx::Ok),
    ("open-webui-basic-auth",         LOADS,          Nginx::Ok),
    ("peertube",                      LOADS,                 Nginx::Ok),
    ("redash-openresty",              fails("}", LUA),                      Nginx::Fails("unknown directive \"vhost_traffic_status_zone\"")),
    ("sentry-self-hosted",            LOADS,       Nginx::Ok),
    ("superset",                      LOADS,       Nginx::Ok),
    ("taiga-gateway",                 LOADS,       Nginx::Ok),
    ("tengine-default",               LOADS,       Nginx::Ok),
    ("tengine-docker-jas0n0ss",       LOADS,       Nginx::Ok),
    ("tengine-docker-woaiso",         LOADS,       Nginx::Ok),
    ("tengine-docker-ywfwj2008",      fails("dso", TENGINE_DSO),            Nginx::Fails("unknown directive \"dso\"")),
    ("tengine-session-sticky-tests",  LOADS,       Nginx::Fails("unknown directive \"session_sticky\"")),
    ("test-aws-ip-hash",              LOADS,             Nginx::Ok),
    ("zammad",                        LOADS,                                 Nginx::Ok),
    ("zammad-ssl",                    LOADS,                  Nginx::Ok),
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/real")
}

/// A copy of the corpus directory, removed when dropped.
struct Copy(PathBuf);

impl Copy {
    fn new(tag: &str) -> Copy {
        let dir = std::env::temp_dir().join(format!("sticky-corpus-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_tree(&corpus_dir(), &dir);
        Copy(dir)
    }

    /// The file to test for `name`: the corpus file, or a wrapper for a snippet.
    fn main_file(&self, name: &str) -> PathBuf {
        let file = self.0.join(format!("{name}.conf"));
        let text = std::fs::read_to_string(&file).expect("corpus file");
        if !is_snippet(&text) {
            return file;
        }
        let wrapper = self.0.join(format!("wrapped-{name}.conf"));
        let body = format!("events {{}}\nhttp {{\n    include {name}.conf;\n}}\n");
        std::fs::write(&wrapper, body).expect("write wrapper");
        wrapper
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read corpus dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn is_snippet(text: &str) -> bool {
    text.lines()
        .nth(1)
        .is_some_and(|l| l.starts_with("# snippet: included in http {}"))
}

/// The corpus files, by name, sorted.
fn corpus_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("corpus dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".conf").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[test]
fn every_corpus_file_cites_its_source_and_is_in_the_table() {
    let names = corpus_names();
    assert!(names.len() >= 30, "only {} corpus files", names.len());
    let listed: Vec<&str> = CORPUS.iter().map(|(n, _, _)| *n).collect();
    for name in &names {
        assert!(
            listed.contains(&name.as_str()),
            "{name}.conf is not in CORPUS"
        );
        let text = std::fs::read_to_string(corpus_dir().join(format!("{name}.conf")))
            .expect("read corpus file");
        assert!(
            text.starts_with("# source: "),
            "{name}.conf: first line must cite the source"
        );
    }
    for name in &listed {
        assert!(
            names.iter().any(|n| n == name),
            "CORPUS lists {name} but there is no {name}.conf"
        );
    }
}

#[test]
fn corpus_files_load_or_fail_where_the_table_says() {
    let copy = Copy::new("proxy");
    let mut wrong = Vec::new();
    for (name, expect, _) in CORPUS {
        let main = copy.main_file(name);
        let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
            .arg("-t")
            .arg("-q")
            .arg("-c")
            .arg(&main)
            .output()
            .expect("run proxy -t");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let ok = match expect {
            Expect::Loads => out.status.success(),
            Expect::FailsOn(directive, _) => {
                !out.status.success()
                    && stderr.lines().next().is_some_and(|l| {
                        l.starts_with("proxy: [emerg] ")
                            && (l.contains(&format!("\"{directive}\""))
                                || l.starts_with(&format!("proxy: [emerg] {directive} in ")))
                    })
            }
        };
        if !ok {
            let want = match expect {
                Expect::Loads => "to load".to_string(),
                Expect::FailsOn(d, waiting) => {
                    format!("to stop at \"{d}\" (waiting for {waiting})")
                }
            };
            wrong.push(format!(
                "{name}: expected {want}; if that work has landed, update CORPUS. Got:\n{stderr}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn nginx_agrees_with_the_nginx_column() {
    let Some(nginx) = nginx_binary() else {
        eprintln!("SKIPPED: nginx is not installed; the nginx column was not checked");
        return;
    };
    let copy = Copy::new("nginx");
    let mut wrong = Vec::new();
    for (name, _, says) in CORPUS {
        let main = copy.main_file(name);
        let prefix = format!("{}/", copy.0.display());
        let out = Command::new(&nginx)
            .args(["-t", "-q", "-p", &prefix, "-e", "stderr", "-c"])
            .arg(&main)
            .output()
            .expect("run nginx -t");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let ok = match says {
            Nginx::Ok => out.status.success(),
            Nginx::Fails(part) => !out.status.success() && stderr.contains(part),
        };
        if !ok {
            wrong.push(format!("{name}: nginx expected {says:?}, got:\n{stderr}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
