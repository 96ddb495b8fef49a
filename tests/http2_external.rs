//! Runs `tests/http2_external.sh`: curl (`--http2-prior-knowledge`, `--http2
//! --cacert`) and h2load, HTTP/2 clients that are not ours (nghttp2), against
//! the proxy binary, the sticky cookie set and honoured over h2c and h2. The
//! script skips, and this test passes, when curl, h2load, openssl or python3
//! is not installed.

mod common;

#[test]
fn curl_and_h2load_speak_http2_to_the_proxy() {
    common::run_external_script(
        "http2_external.sh",
        env!("CARGO_BIN_EXE_proxy"),
        "all external HTTP/2 checks passed",
    );
}
