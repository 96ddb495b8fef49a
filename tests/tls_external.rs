//! Runs `tests/tls_external.sh`: curl and openssl s_client (OpenSSL, a TLS
//! stack that is not ours) against the proxy binary. The script skips, and
//! this test passes, when curl, openssl or python3 is not installed.

use std::process::Command;

#[test]
fn curl_and_openssl_s_client_talk_to_the_proxy() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls_external.sh");
    let out = match Command::new("bash")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_proxy"))
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipped: cannot run bash: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("all external TLS checks passed") || stdout.starts_with("skipped:"),
        "{stdout}"
    );
}
