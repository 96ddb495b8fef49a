//! The `proxy` command line as a user meets it: `-t`, `-T`, `-q`, `-v`, `-V`, `-h`,
//! nginx's messages on stderr and exit codes. Each test writes its configuration
//! into its own scratch directory; nothing listens.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

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

/// The HTTPS examples (TLS to the clients and to the backends) pass `-t`
/// as shipped: their certificates, keys and CAs are read and checked.
#[test]
fn tls_examples_pass_the_test_flag() {
    for example in ["https-sticky.conf", "https-backend.conf"] {
        let conf = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("conf/examples")
            .join(example);
        let out = with_conf(&["-t", "-q"], &conf);
        assert_eq!(stderr(&out), "", "{example}");
        assert_eq!(out.status.code(), Some(0), "{example}");
    }
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
fn dump_flag_prints_each_file_verbatim_under_its_header() {
    let dir = Scratch::new("dump");
    let conf = valid_conf(&dir);
    let out = with_conf(&["-T"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // nginx's -T: every file read, once, in the order read, as written.
    let upstream = dir.0.join("upstreams/app.conf");
    assert_eq!(
        stdout(&out),
        format!(
            "# configuration file {}:\n{VALID}\n# configuration file {}:\n{UPSTREAM}\n",
            conf.display(),
            upstream.display()
        )
    );
    // A file included twice is printed once.
    let twice = VALID.replace(
        "    include upstreams/*.conf;\n",
        "    include upstreams/*.conf;\n    # again\n",
    ) + "# include upstreams/app.conf;\n";
    let conf = dir.write("sticky.conf", &twice);
    let out = with_conf(&["-T", "-q"], &conf);
    assert_eq!(stdout(&out).matches("# configuration file").count(), 2);
    assert_eq!(stderr(&out), "");
}

/// The -g/-p/-e options: a relative `-c` resolves against `-p`.
#[test]
fn globals_prefix_and_error_log_options_for_testing() {
    let dir = Scratch::new("gpe");
    dir.write(
        "conf/proxy.conf",
        "events {}\nhttp {\n    server { listen 127.0.0.1:0; }\n}\n",
    );
    let prefix = format!("{}/", dir.0.display());
    let conf = dir.0.join("conf/proxy.conf");
    let file = conf.display();

    let out = proxy(&[
        "-t",
        "-p",
        &prefix,
        "-c",
        "conf/proxy.conf",
        "-g",
        "daemon off;",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("configuration file {file} test is successful")));

    // Errors in -g are "in command line"; a directive given twice is duplicate
    // at the file's line, as nginx says.
    let cases: &[(&str, &str, String)] = &[
        (
            "nonsense on;",
            "",
            "unknown directive \"nonsense\" in command line".into(),
        ),
        (
            "worker_processes x;",
            "",
            "\"worker_processes\" directive invalid value in command line".into(),
        ),
        (
            "pid a.pid;",
            "\npid b.pid;",
            format!("\"pid\" directive is duplicate in {file}:2"),
        ),
        (
            "daemon off;",
            "daemon off;",
            format!("\"daemon\" directive is duplicate in {file}:1"),
        ),
        (
            "daemon off",
            "",
            "unexpected end of parameter, expecting \";\" in command line".into(),
        ),
    ];
    for (globals, file_head, message) in cases {
        dir.write(
            "conf/proxy.conf",
            &format!("{file_head}\nevents {{}}\nhttp {{ server {{ listen 127.0.0.1:0; }} }}\n"),
        );
        let out = proxy(&["-t", "-p", &prefix, "-c", "conf/proxy.conf", "-g", globals]);
        assert_eq!(out.status.code(), Some(1), "{globals}");
        assert_eq!(
            stderr(&out),
            format!("proxy: [emerg] {message}\nproxy: configuration file {file} test failed\n"),
            "{globals}"
        );
    }

    // -e FILE: start-up errors go to stderr and to FILE (relative to -p).
    dir.write("conf/proxy.conf", "http { bogus; }\n");
    let out = proxy(&["-p", &prefix, "-c", "conf/proxy.conf", "-e", "startup.log"]);
    assert_eq!(out.status.code(), Some(1));
    let message = format!("unknown directive \"bogus\" in {file}:1");
    assert_eq!(stderr(&out), format!("proxy: [emerg] {message}\n"));
    let logged = std::fs::read_to_string(dir.0.join("startup.log")).expect("-e file written");
    // A relative -c without -p is named by its full path, as nginx does.
    let out = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .current_dir(&dir.0)
        .args(["-t", "-c", "conf/proxy.conf"])
        .output()
        .expect("run proxy");
    assert_eq!(
        stderr(&out),
        format!("proxy: [emerg] {message}\nproxy: configuration file {file} test failed\n")
    );
    // Without -p, a relative -e is under the configuration's directory, as the
    // error log and pid file are.
    let conf_path = conf.display().to_string();
    let out = proxy(&["-c", &conf_path, "-e", "startup2.log"]);
    assert_eq!(out.status.code(), Some(1));
    let beside = std::fs::read_to_string(dir.0.join("conf/startup2.log")).expect("-e beside conf");
    assert!(beside.contains(&message), "{beside}");
    assert!(
        logged.ends_with(&format!(
            " [emerg] {}#0: {message}\n",
            out_pid_free(&logged)
        )),
        "{logged}"
    );
}

/// The pid part of an error-log line (`... [emerg] PID#0: ...`), for comparison.
fn out_pid_free(line: &str) -> String {
    line.split(" [emerg] ")
        .nth(1)
        .and_then(|rest| rest.split('#').next())
        .unwrap_or_default()
        .to_string()
}

/// A configuration as nginx-tests writes them, answering `TEXT\n` on `/`.
fn test_nginx_conf(text: &str) -> String {
    format!(
        "daemon off;\nevents {{}}\nhttp {{\n    access_log access.log;\n    \
         server {{\n        listen 127.0.0.1:0;\n        \
         location / {{ return 200 \"{text}\\n\"; }}\n    }}\n}}\n"
    )
}

/// `GET /` over HTTP/1.0 to `addr`: the whole reply.
fn http_get(addr: &str) -> Result<String, String> {
    let mut conn = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    std::io::Write::write_all(&mut conn, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut conn, &mut reply).map_err(|e| e.to_string())?;
    Ok(reply)
}

/// Polls `done` for up to five seconds.
fn wait_until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

/// Exactly how nginx's own test tooling (nginx-tests' `lib/Test/Nginx.pm`) starts
/// nginx: `-p TESTDIR/ -c nginx.conf -e error.log -g "pid TESTDIR/nginx.pid;
/// error_log TESTDIR/error.log debug;"`, then waits for the pid file.
#[test]
fn starts_the_way_nginx_test_tooling_runs_nginx() {
    let dir = Scratch::new("test-nginx");
    let testdir = dir.0.display().to_string();
    dir.write("nginx.conf", &test_nginx_conf("ok"));
    let globals = format!("pid {testdir}/nginx.pid; error_log {testdir}/error.log debug;");
    let mut child =
        common::spawn_like_test_nginx(Path::new(env!("CARGO_BIN_EXE_proxy")), &dir.0, &globals);
    let pid_file = dir.0.join("nginx.pid");
    let error_log = dir.0.join("error.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut addr = None;
    while std::time::Instant::now() < deadline && addr.is_none() {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let log = std::fs::read_to_string(&error_log).unwrap_or_default();
        addr = log
            .lines()
            .find_map(|l| l.split("listening on ").nth(1))
            .and_then(|rest| rest.split(' ').next())
            .map(str::to_string);
    }
    let result = (|| {
        let addr = addr.ok_or("no \"listening on\" line in error.log")?;
        let pid = std::fs::read_to_string(&pid_file).map_err(|e| format!("pid file: {e}"))?;
        if pid != format!("{}\n", child.id()) {
            return Err(format!("pid file says {pid:?}"));
        }
        let reply = http_get(&addr)?;
        if !reply.starts_with("HTTP/1.1 200") || !reply.ends_with("\r\n\r\nok\n") {
            return Err(format!("reply {reply:?}"));
        }
        // The relative access_log lands under the prefix.
        if !wait_until(|| {
            std::fs::read_to_string(dir.0.join("access.log"))
                .is_ok_and(|l| l.contains("GET / HTTP/1.0"))
        }) {
            return Err("no access.log line under the prefix".to_string());
        }
        // A reload (here through `-s reload` with the same options) reads the
        // file again with the same -p and -g: the new text is served and the
        // pid file named by -g is still the one in use.
        dir.write("nginx.conf", &test_nginx_conf("reloaded"));
        let prefix = format!("{testdir}/");
        let out = proxy(&[
            "-p",
            &prefix,
            "-c",
            "nginx.conf",
            "-g",
            &globals,
            "-s",
            "reload",
        ]);
        if out.status.code() != Some(0) {
            return Err(format!("-s reload: {}", stderr(&out)));
        }
        if !wait_until(|| http_get(&addr).is_ok_and(|r| r.ends_with("\r\n\r\nreloaded\n"))) {
            return Err("the reloaded configuration is not served".to_string());
        }
        let log = || std::fs::read_to_string(&error_log).unwrap_or_default();
        if !wait_until(|| log().contains("configuration reloaded"))
            || log().contains("\"pid\" changed")
        {
            return Err("the reload lost the command line's directives".to_string());
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        panic!(
            "{e}\nerror.log:\n{}",
            std::fs::read_to_string(&error_log).unwrap_or_default()
        );
    }
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
    for flag in [
        "-c <FILE>",
        "-p <PREFIX>",
        "-e <FILE>",
        "-g <DIRECTIVES>",
        "-t",
        "-T",
        "-q",
        "-v",
        "-V",
        "-h",
    ] {
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
        &VALID.replace("http {\n", "http {\n    tcp_nodelay on;\n"),
    );
    let file = conf.display();
    let out = with_conf(&["-t"], &conf);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stderr(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("proxy: [warn] \"tcp_nodelay\""),
        "{text}"
    );
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
fn shipped_configs_test_ok_and_dump_verbatim() {
    for rel in ["sticky.conf", "tengine/nginx.conf"] {
        let conf = shipped(rel);
        let out = with_conf(&["-T", "-q"], &conf);
        assert_eq!(out.status.code(), Some(0), "{rel}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{rel}");
        let text = std::fs::read_to_string(&conf).expect("shipped config");
        let first = format!("# configuration file {}:\n{text}\n", conf.display());
        assert!(stdout(&out).starts_with(&first), "{rel}");
    }
}

/// `access_log syslog:...` and `error_log syslog:...`: one UDP datagram per
/// line, `<PRI>Mmm dd hh:mm:ss [HOSTNAME ]TAG: LINE`, as nginx sends them.
#[test]
fn logs_go_to_syslog_over_udp() {
    use std::net::UdpSocket;
    use std::time::Duration;
    let bind = || {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind a syslog server");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    };
    let (errors, access) = (bind(), bind());
    let listen = common::dead_addr();
    let dir = Scratch::new("syslog");
    let conf = dir.write(
        "proxy.conf",
        &format!(
            "error_log syslog:server={},tag=edge info;\nevents {{}}\nhttp {{\n  server {{\n    \
             listen {listen};\n    access_log syslog:server={},facility=local0,nohostname combined;\n    \
             location / {{ return 200 \"ok\\n\"; }}\n  }}\n}}\n",
            errors.local_addr().expect("addr"),
            access.local_addr().expect("addr"),
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_proxy"))
        .arg("-c")
        .arg(&conf)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the proxy");
    let result = (|| {
        let mut buf = [0u8; 4096];
        // The start-up line, at info: local7.info is PRI 190.
        let n = errors
            .recv(&mut buf)
            .map_err(|e| format!("no error-log datagram: {e}"))?;
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        if !line.starts_with("<190>") || !line.contains(" edge: ") || !line.contains(" [info] ") {
            return Err(format!("error-log datagram {line:?}"));
        }
        if !wait_until(|| http_get(&listen.to_string()).is_ok()) {
            return Err("the proxy did not answer".to_string());
        }
        // local0.info is PRI 134; no hostname: the tag follows the time.
        let n = access
            .recv(&mut buf)
            .map_err(|e| format!("no access-log datagram: {e}"))?;
        let line = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (head, rest) = line.split_once(" nginx: ").unwrap_or_default();
        let ok = head.starts_with("<134>")
            && head.len() == "<134>Dec  5 04:51:13".len()
            && rest.starts_with("127.0.0.1 - - [")
            && rest.contains("\"GET / HTTP/1.0\" 200 3 ")
            && !rest.ends_with('\n');
        if !ok {
            return Err(format!("access-log datagram {line:?}"));
        }
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        panic!("{e}");
    }
}
