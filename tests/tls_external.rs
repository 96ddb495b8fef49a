//! Runs `tests/tls_external.sh`: curl and openssl s_client (OpenSSL, a TLS
//! stack that is not ours) against the proxy binary. The script skips, and
//! this test passes, when curl, openssl or python3 is not installed.

mod common;

#[test]
fn curl_and_openssl_s_client_talk_to_the_proxy() {
    common::run_external_script(
        "tls_external.sh",
        env!("CARGO_BIN_EXE_proxy"),
        "all external TLS checks passed",
    );
}
