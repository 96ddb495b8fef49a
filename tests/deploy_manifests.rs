//! The deployment files agree with the proxy and with each other: every YAML
//! document of deploy/kubernetes/ parses; the configurations they carry load as
//! `proxy -t` loads them; ports, probe paths, the `resolve` name, the key
//! Secret's mount and the graceful-stop timing match; the image's own
//! configuration (deploy/sticky.conf) loads and the Dockerfile starts the proxy
//! on it in the foreground with SIGQUIT as its stop signal.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_yaml_ng::Value;
use sticky_proxy::config::{load_str, Config, LocationMatch};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every document of every YAML file under deploy/kubernetes/.
fn documents() -> Vec<(String, Value)> {
    let dir = root().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let value =
                Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            docs.push((file.display().to_string(), value));
        }
    }
    docs
}

/// The value at `path`: keys separated by `/` (keys may hold dots, as
/// `data/sticky.conf`), numbers index sequences.
fn get<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('/')
        .fold(v, |v, key| match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[key],
        })
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    get(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path} is a string"))
}

fn number(v: &Value, path: &str) -> u64 {
    get(v, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path} is a number"))
}

/// The object of `kind` named `name`.
fn object<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .map(|(_, v)| v)
        .find(|v| v["kind"].as_str() == Some(kind) && v["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{kind} {name}"))
}

/// Checks configuration text with the binary's `proxy -t` (from a file named
/// like `path` in a temporary directory), then loads it as `-t` does.
fn load(src: &str, path: &str) -> Config {
    let name = Path::new(path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("x.conf");
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("sticky-deploy-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(name);
    std::fs::write(&file, src).expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxy"))
        .arg("-t")
        .arg("-c")
        .arg(&file)
        .output()
        .expect("run proxy -t");
    let _ = std::fs::remove_dir_all(&dir);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("test is successful"),
        "proxy -t {path}: {said}"
    );
    match load_str(src, Path::new(path)) {
        Ok((config, _)) => config,
        Err(e) => panic!("{path} does not load: {e}"),
    }
}

/// The proxy's ConfigMap and its configuration, loaded where it is mounted.
fn proxy_config(docs: &[(String, Value)]) -> (&Value, Config) {
    let map = object(docs, "ConfigMap", "sticky-proxy-config");
    let config = load(
        text(map, "data/sticky.conf"),
        "/etc/sticky-proxy/sticky.conf",
    );
    (map, config)
}

fn listens(config: &Config) -> Vec<u16> {
    config
        .http
        .servers
        .iter()
        .flat_map(|s| s.listens.iter().map(|l| l.addr.port()))
        .collect()
}

/// True when a server listening on `port` serves `check_status` at `path`.
fn status_at(config: &Config, port: u16, path: &str) -> bool {
    config
        .http
        .servers
        .iter()
        .filter(|s| s.listens.iter().any(|l| l.addr.port() == port))
        .flat_map(|s| s.locations.iter())
        .any(|l| {
            let matches = match &l.matcher {
                LocationMatch::Exact(uri) => uri == path,
                LocationMatch::Prefix { uri, .. } => path.starts_with(uri.as_str()),
                LocationMatch::Regex { re, .. } => re.is_match(path),
            };
            matches && l.conf.check_status.is_some()
        })
}

/// The port number of the container port named or numbered `port`.
fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().expect("a port name or number");
    get(container, "ports")
        .as_sequence()
        .expect("ports")
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .map(|p| number(p, "containerPort"))
        .unwrap_or_else(|| panic!("container port {name}"))
}

#[test]
fn every_document_parses_and_names_itself() {
    let docs = documents();
    assert!(docs.len() >= 9, "{} documents", docs.len());
    for (file, doc) in &docs {
        assert!(doc["apiVersion"].as_str().is_some(), "{file}: apiVersion");
        assert!(doc["kind"].as_str().is_some(), "{file}: kind");
        if doc["kind"].as_str() != Some("Kustomization") {
            assert!(doc["metadata"]["name"].as_str().is_some(), "{file}: name");
        }
    }
    // The kustomization lists every file.
    let kustomization = &docs
        .iter()
        .find(|(_, d)| d["kind"].as_str() == Some("Kustomization"))
        .expect("kustomization")
        .1;
    let listed: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (file, doc) in &docs {
        let name = Path::new(file)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("");
        if doc["kind"].as_str() != Some("Kustomization") {
            assert!(listed.contains(&name), "{name} in kustomization.yaml");
        }
    }
}

#[test]
fn the_proxy_deployment_matches_its_configuration() {
    let docs = documents();
    let (map, config) = proxy_config(&docs);
    let deployment = object(&docs, "Deployment", "sticky-proxy");
    assert_eq!(number(deployment, "spec/replicas"), 3);
    let pod = get(deployment, "spec/template/spec");
    let proxy = &pod["containers"][0];
    assert_eq!(text(proxy, "name"), "proxy");
    let args: Vec<&str> = proxy["args"]
        .as_sequence()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args, ["-c", "/etc/sticky-proxy/sticky.conf"]);

    // Every container port is listened on; the probes ask the status page.
    let ports = listens(&config);
    for p in proxy["ports"].as_sequence().expect("ports") {
        let port = number(p, "containerPort");
        assert!(
            ports.contains(&(port as u16)),
            "{port} listened on: {ports:?}"
        );
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        let get_ = get(proxy, &format!("{probe}/httpGet"));
        let port = container_port(proxy, &get_["port"]) as u16;
        let path = text(get_, "path");
        assert!(
            status_at(&config, port, path),
            "{probe}: check_status at {port}{path}"
        );
    }

    // The Service sends its port to the container port the proxy serves on.
    let service = object(&docs, "Service", "sticky-proxy");
    let target = container_port(proxy, get(service, "spec/ports/0/targetPort"));
    assert!(ports.contains(&(target as u16)));
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );

    // preStop, then the graceful stop, fit in the grace period.
    let pre_stop: Vec<&str> = get(proxy, "lifecycle/preStop/exec/command")
        .as_sequence()
        .expect("preStop")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(pre_stop[0], "sleep");
    let sleep: u64 = pre_stop[1].parse().expect("seconds");
    let grace = number(pod, "terminationGracePeriodSeconds");
    let quit = sticky_proxy::server::GRACEFUL_STOP.as_secs();
    assert!(grace > sleep + quit, "{grace} s > {sleep} s + {quit} s");

    // The pid file the reloader signals through is on the shared volume.
    let pid = config.main.pid.as_deref().expect("pid");
    let mounted = |c: &Value, dir: &str| {
        c["volumeMounts"]
            .as_sequence()
            .expect("mounts")
            .iter()
            .any(|m| pid.starts_with(dir) && m["mountPath"].as_str() == Some(dir))
    };
    let reloader = &pod["containers"][1];
    assert_eq!(text(reloader, "name"), "reloader");
    assert!(pod["shareProcessNamespace"].as_bool() == Some(true));
    for c in [proxy, reloader] {
        assert!(
            mounted(c, "/run/sticky-proxy"),
            "{} on /run/sticky-proxy",
            pid.display()
        );
    }

    // The key Secret is mounted where configmap.yaml says key_file= goes.
    let secret = object(&docs, "Secret", "sticky-proxy-keys");
    assert!(secret["stringData"]["cookie-key"].as_str().is_some());
    assert!(text(map, "data/sticky.conf").contains("key_file=/etc/sticky-proxy-keys/cookie-key"));
    let keys_volume = pod["volumes"]
        .as_sequence()
        .expect("volumes")
        .iter()
        .find(|v| v["secret"]["secretName"].as_str() == Some("sticky-proxy-keys"))
        .expect("the key Secret as a volume");
    let keys_mount = proxy["volumeMounts"]
        .as_sequence()
        .expect("mounts")
        .iter()
        .find(|m| m["name"] == keys_volume["name"])
        .expect("the key volume mounted");
    assert_eq!(text(keys_mount, "mountPath"), "/etc/sticky-proxy-keys");
}

#[test]
fn the_backends_are_resolved_through_their_headless_service() {
    let docs = documents();
    let (_, config) = proxy_config(&docs);
    let upstream = config.http.upstream("backends").expect("upstream backends");
    let resolve = upstream.resolve.as_ref().expect("resolved at run time");
    let service = object(&docs, "Service", "sticky-backends");
    assert_eq!(text(service, "spec/clusterIP"), "None", "headless");
    let name = format!(
        "{}.{}.svc.cluster.local:{}",
        text(service, "metadata/name"),
        text(service, "metadata/namespace"),
        number(service, "spec/ports/0/port")
    );
    assert_eq!(resolve.servers[0].server, name);

    // The two demo pods: each configuration loads, listens on the Service's
    // target port and answers the seeds' text.
    let backend_map = object(&docs, "ConfigMap", "sticky-backend-config");
    let target = number(service, "spec/ports/0/targetPort") as u16;
    for (pod, file, answer) in [
        ("backend-1", "hello.conf", "return 200 \"Hello, world\\n\""),
        (
            "backend-2",
            "unavailable.conf",
            "return 503 \"Service unavailable\\n\"",
        ),
    ] {
        let src = text(backend_map, &format!("data/{file}"));
        assert!(src.contains(answer), "{file}: {answer}");
        let backend = load(src, &format!("/etc/backend/{file}"));
        assert_eq!(listens(&backend), [target], "{file}");
        let p = object(&docs, "Pod", pod);
        assert_eq!(
            p["metadata"]["labels"], service["spec"]["selector"],
            "{pod}"
        );
        let args = get(p, "spec/containers/0/args");
        assert_eq!(
            args[1].as_str(),
            Some(format!("/etc/backend/{file}").as_str())
        );
    }
}

#[test]
fn the_image_runs_its_own_configuration_in_the_foreground() {
    let src =
        std::fs::read_to_string(root().join("deploy/sticky.conf")).expect("deploy/sticky.conf");
    let config = load(&src, "/etc/sticky-proxy/sticky.conf");
    let ports = listens(&config);
    assert!(status_at(&config, 8090, "/status"));
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    for line in [
        "COPY deploy/sticky.conf /etc/sticky-proxy/sticky.conf",
        "STOPSIGNAL SIGQUIT",
        "USER 10001:10001",
        "ENTRYPOINT [\"/usr/local/bin/proxy\"]",
        "CMD [\"-c\", \"/etc/sticky-proxy/sticky.conf\"]",
    ] {
        assert!(dockerfile.lines().any(|l| l == line), "Dockerfile: {line}");
    }
    let exposed: Vec<u16> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("EXPOSE "))
        .flat_map(|l| l.split_whitespace().filter_map(|p| p.parse().ok()))
        .collect();
    for port in &exposed {
        assert!(ports.contains(port), "EXPOSE {port} is listened on");
    }
}
