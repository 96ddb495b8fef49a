//! Broken configurations: each must fail with nginx's exact message and the line
//! where nginx reports it. Configs are loaded from text through
//! `sticky_proxy::config::load_str` as `/etc/proxy/test.conf`; the include cases use
//! real files in a temporary directory.

use std::path::{Path, PathBuf};

use sticky_proxy::config::{load, load_str, ConfigError};

const FILE: &str = "/etc/proxy/test.conf";

fn load_err(src: &str) -> ConfigError {
    match load_str(src, Path::new(FILE)) {
        Ok(_) => panic!("config should have failed:\n{src}"),
        Err(e) => e,
    }
}

/// (name, config text, exact message, line)
const CASES: &[(&str, &str, &str, u32)] = &[
    // ---- syntax (parser) ----
    (
        "missing semicolon before closing brace",
        "http {\n  server {\n    listen 127.0.0.1:8080\n  }\n}\n",
        "unexpected \"}\"",
        4,
    ),
    (
        "missing semicolon swallows the next directive",
        "http {\n  server {\n    listen 127.0.0.1:8080\n    server_name a;\n  }\n}\n",
        "invalid parameter \"server_name\"",
        4,
    ),
    ("extra closing brace", "http {\n}\n}\n", "unexpected \"}\"", 3),
    (
        "unclosed block",
        "http {\n  server {\n    listen 80;\n",
        "unexpected end of file, expecting \"}\"",
        4,
    ),
    (
        "unterminated quote",
        "http {\n  server {\n    return 200 \"hello;\n  }\n}\n",
        "unexpected end of file, expecting \";\" or \"}\"",
        6,
    ),
    ("stray semicolon", "http {\n  ;\n}\n", "unexpected \";\"", 2),
    // ---- unknown / wrong context ----
    (
        "unknown directive",
        "http {\n  server {\n    location / {\n      proxy_pas http://a;\n    }\n  }\n}\n",
        "unknown directive \"proxy_pas\"",
        4,
    ),
    (
        "server at main level",
        "server {\n}\nhttp {\n}\n",
        "\"server\" directive is not allowed here",
        1,
    ),
    (
        "location at http level",
        "http {\n  location / {\n  }\n}\n",
        "\"location\" directive is not allowed here",
        2,
    ),
    (
        "listen in location",
        "http {\n  server {\n    location / {\n      listen 80;\n    }\n  }\n}\n",
        "\"listen\" directive is not allowed here",
        4,
    ),
    (
        "session_sticky outside upstream",
        "http {\n  server {\n    session_sticky;\n  }\n}\n",
        "\"session_sticky\" directive is not allowed here",
        3,
    ),
    (
        "worker_processes inside http",
        "http {\n  worker_processes 2;\n}\n",
        "\"worker_processes\" directive is not allowed here",
        2,
    ),
    (
        "keepalive_timeout twice in a location",
        "http {\n  server {\n    location / {\n      keepalive_timeout 5s;\n      keepalive_timeout 6s;\n    }\n  }\n}\n",
        "\"keepalive_timeout\" directive is duplicate",
        5,
    ),
    (
        "block directive without block",
        "http;\n",
        "directive \"http\" has no opening \"{\"",
        1,
    ),
    (
        "simple directive with a block",
        "http {\n  server {\n    listen 80 {\n    }\n  }\n}\n",
        "directive \"listen\" is not terminated by \";\"",
        3,
    ),
    (
        "server block inside upstream",
        "http {\n  upstream a {\n    server {\n    }\n  }\n}\n",
        "directive \"server\" is not terminated by \";\"",
        3,
    ),
    // ---- arity, duplicates, values ----
    (
        "proxy_pass without argument",
        "http {\n  server {\n    location / {\n      proxy_pass;\n    }\n  }\n}\n",
        "invalid number of arguments in \"proxy_pass\" directive",
        4,
    ),
    (
        "proxy_pass with two arguments",
        "http {\n  server {\n    location / {\n      proxy_pass http://a http://b;\n    }\n  }\n}\n",
        "invalid number of arguments in \"proxy_pass\" directive",
        4,
    ),
    (
        "duplicate proxy_connect_timeout",
        "http {\n  proxy_connect_timeout 5s;\n  proxy_connect_timeout 6s;\n}\n",
        "\"proxy_connect_timeout\" directive is duplicate",
        3,
    ),
    ("duplicate http", "http {\n}\nhttp {\n}\n", "\"http\" directive is duplicate", 3),
    (
        "duplicate events",
        "events {\n}\nevents {\n}\nhttp {\n}\n",
        "\"events\" directive is duplicate",
        3,
    ),
    (
        "bad time unit",
        "http {\n  proxy_read_timeout 10x;\n}\n",
        "\"proxy_read_timeout\" directive invalid value",
        2,
    ),
    (
        "bad size unit",
        "http {\n  client_max_body_size 1q;\n}\n",
        "\"client_max_body_size\" directive invalid value",
        2,
    ),
    (
        "on/off flag with another value",
        "http {\n  sendfile maybe;\n}\n",
        "invalid value \"maybe\" in \"sendfile\" directive, it must be \"on\" or \"off\"",
        2,
    ),
    (
        "access_log off with a parameter",
        "http {\n  access_log off combined;\n}\n",
        "invalid parameter \"combined\"",
        2,
    ),
    (
        "listen with a bad backlog",
        "http {\n  server {\n    listen 127.0.0.1:8080 backlog=x;\n  }\n}\n",
        "invalid backlog \"backlog=x\"",
        3,
    ),
    (
        "proxy_pass without host",
        "http {\n  server {\n    location / {\n      proxy_pass http://;\n    }\n  }\n}\n",
        "no host in upstream \"\"",
        4,
    ),
    (
        "server_tokens with another value",
        "http {\n  server_tokens maybe;\n}\n",
        "invalid value \"maybe\"",
        2,
    ),
    (
        "worker_processes not a number",
        "worker_processes many;\nhttp {\n}\n",
        "\"worker_processes\" directive invalid value",
        1,
    ),
    (
        "worker_connections not a number",
        "events {\n  worker_connections lots;\n}\nhttp {\n}\n",
        "invalid number \"lots\"",
        2,
    ),
    (
        "bad proxy_next_upstream value",
        "http {\n  proxy_next_upstream error http_418;\n}\n",
        "invalid value \"http_418\"",
        2,
    ),
    (
        "bad proxy_http_version",
        "http {\n  proxy_http_version 2.0;\n}\n",
        "invalid value \"2.0\"",
        2,
    ),
    (
        "bad error_log level",
        "error_log stderr loud;\nhttp {\n}\n",
        "invalid log level \"loud\"",
        1,
    ),
    (
        "unknown variable",
        "http {\n  proxy_set_header X-Foo $nosuchvar;\n}\n",
        "unknown \"nosuchvar\" variable",
        2,
    ),
    (
        "unknown log format",
        "http {\n  access_log /tmp/a.log fancy;\n}\n",
        "unknown log format \"fancy\"",
        2,
    ),
    (
        "duplicate log_format name",
        "http {\n  log_format combined '$remote_addr';\n}\n",
        "duplicate \"log_format\" name \"combined\"",
        2,
    ),
    (
        "bad return code",
        "http {\n  server {\n    return abc;\n  }\n}\n",
        "invalid return code \"abc\"",
        3,
    ),
    ("missing http block", "events {\n}\n", "no \"http\" block in /etc/proxy/test.conf", 0),
    // ---- session_sticky ----
    (
        "session_sticky bad mode",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky mode=insrt;\n  }\n}\n",
        "invalid parameter \"mode=insrt\"",
        4,
    ),
    (
        "session_sticky prefix of a mode is not a mode",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky mode=insertfoo;\n  }\n}\n",
        "invalid parameter \"mode=insertfoo\"",
        4,
    ),
    (
        "session_sticky bad fallback",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky fallback=maybe;\n  }\n}\n",
        "invalid parameter \"fallback=maybe\"",
        4,
    ),
    (
        "session_sticky bad option",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky option=sideways;\n  }\n}\n",
        "invalid parameter \"option=sideways\"",
        4,
    ),
    (
        "session_sticky bad hash",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky hash=sha1;\n  }\n}\n",
        "invalid parameter \"hash=sha1\"",
        4,
    ),
    (
        "session_sticky empty cookie",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky cookie=;\n  }\n}\n",
        "invalid parameter \"cookie=\"",
        4,
    ),
    (
        "session_sticky cookie name with separator",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky \"cookie=a,b\";\n  }\n}\n",
        "invalid parameter \"cookie=a,b\"",
        4,
    ),
    (
        "session_sticky non-integer maxidle",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky maxidle=abc;\n  }\n}\n",
        "invalid parameter \"maxidle=abc\"",
        4,
    ),
    (
        "session_sticky bad maxage unit",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky maxage=10x;\n  }\n}\n",
        "invalid parameter \"maxage=10x\"",
        4,
    ),
    (
        "session_sticky unknown parameter",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky secure=on;\n  }\n}\n",
        "invalid parameter \"secure=on\"",
        4,
    ),
    (
        "session_sticky parameter without value",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky insert;\n  }\n}\n",
        "invalid parameter \"insert\"",
        4,
    ),
    (
        "session_sticky parameter given twice",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky cookie=a cookie=b;\n  }\n}\n",
        "duplicate parameter \"cookie\" in \"session_sticky\" directive",
        4,
    ),
    (
        "duplicate session_sticky",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n    session_sticky;\n    session_sticky cookie=x;\n  }\n}\n",
        "\"session_sticky\" directive is duplicate",
        5,
    ),
    (
        "hide_cookie names an unknown upstream",
        "http {\n  server {\n    session_sticky_hide_cookie upstream=nope;\n  }\n}\n",
        "upstream \"nope\" in \"session_sticky_hide_cookie\" directive is not defined",
        3,
    ),
    (
        "hide_cookie names a non-sticky upstream",
        "http {\n  upstream plain {\n    server 127.0.0.1:9000;\n  }\n  server {\n    location / {\n      session_sticky_hide_cookie upstream=plain;\n    }\n  }\n}\n",
        "upstream \"plain\" in \"session_sticky_hide_cookie\" directive has no \"session_sticky\"",
        7,
    ),
    (
        "deprecated alias session_sticky_header checked the same way",
        "http {\n  session_sticky_header upstream=nope;\n}\n",
        "upstream \"nope\" in \"session_sticky_header\" directive is not defined",
        2,
    ),
    (
        "hide_cookie without upstream=",
        "http {\n  session_sticky_hide_cookie nope;\n}\n",
        "invalid parameter \"nope\"",
        2,
    ),
    // ---- upstream ----
    (
        "upstream without servers",
        "http {\n  upstream empty {\n    keepalive 4;\n  }\n}\n",
        "no servers are inside upstream",
        2,
    ),
    (
        "upstream server with zero weight",
        "http {\n  upstream a {\n    server 127.0.0.1:9000 weight=0;\n  }\n}\n",
        "invalid parameter \"weight=0\"",
        3,
    ),
    (
        "upstream server with unknown parameter",
        "http {\n  upstream a {\n    server 127.0.0.1:9000 slow_start=10s;\n  }\n}\n",
        "invalid parameter \"slow_start=10s\"",
        3,
    ),
    (
        "upstream server with empty id",
        "http {\n  upstream a {\n    server 127.0.0.1:9000 id=;\n  }\n}\n",
        "invalid parameter \"id=\"",
        3,
    ),
    (
        "upstream server with bad port",
        "http {\n  upstream a {\n    server 127.0.0.1:99999;\n  }\n}\n",
        "invalid port in upstream \"127.0.0.1:99999\"",
        3,
    ),
    (
        "upstream server host not found",
        "http {\n  upstream a {\n    server no-such-host.invalid:80;\n  }\n}\n",
        "host not found in upstream \"no-such-host.invalid:80\"",
        3,
    ),
    (
        "duplicate upstream",
        "http {\n  upstream a {\n    server 127.0.0.1:9000;\n  }\n  upstream a {\n    server 127.0.0.1:9001;\n  }\n}\n",
        "duplicate upstream \"a\"",
        5,
    ),
    // ---- proxy_pass ----
    (
        "proxy_pass with URI in regex location",
        "http {\n  server {\n    location ~ ^/api {\n      proxy_pass http://127.0.0.1:9000/v1/;\n    }\n  }\n}\n",
        "\"proxy_pass\" cannot have URI part in location given by regular expression, or inside named location, or inside \"if\" statement, or inside \"limit_except\" block",
        4,
    ),
    (
        "proxy_ssl_verify without proxy_ssl_trusted_certificate",
        "http {\n  server {\n    location / {\n      proxy_pass https://127.0.0.1:9443;\n      proxy_ssl_verify on;\n    }\n  }\n}\n",
        "no proxy_ssl_trusted_certificate for proxy_ssl_verify",
        5,
    ),
    (
        "proxy_pass with unknown scheme",
        "http {\n  server {\n    location / {\n      proxy_pass ftp://127.0.0.1;\n    }\n  }\n}\n",
        "invalid URL prefix",
        4,
    ),
    (
        "proxy_ssl_certificate without its key",
        "http {\n  server {\n    proxy_ssl_certificate /nonexistent/c.pem;\n    location / {\n      proxy_pass https://$host;\n    }\n  }\n}\n",
        "no \"proxy_ssl_certificate_key\" is defined for certificate \"/nonexistent/c.pem\"",
        3,
    ),
    (
        "proxy_ssl_trusted_certificate missing",
        "http {\n  proxy_ssl_trusted_certificate /nonexistent/ca.pem;\n  server {\n    location / {\n      proxy_pass https://127.0.0.1:9443;\n    }\n  }\n}\n",
        "cannot load certificate \"/nonexistent/ca.pem\": BIO_new_file() failed (No such file or directory (os error 2))",
        2,
    ),
    (
        "proxy_pass to upstream name with a port",
        "http {\n  upstream app {\n    server 127.0.0.1:9000;\n  }\n  server {\n    location / {\n      proxy_pass http://app:8080;\n    }\n  }\n}\n",
        "upstream \"app\" may not have port 8080",
        7,
    ),
    (
        "proxy_pass at server level",
        "http {\n  server {\n    proxy_pass http://127.0.0.1:9000;\n  }\n}\n",
        "\"proxy_pass\" directive is not allowed here",
        3,
    ),
    (
        "duplicate proxy_pass",
        "http {\n  server {\n    location / {\n      proxy_pass http://127.0.0.1:9000;\n      proxy_pass http://127.0.0.1:9001;\n    }\n  }\n}\n",
        "\"proxy_pass\" directive is duplicate",
        5,
    ),
    // ---- listen, server_name, location ----
    (
        "listen on a bad address",
        "http {\n  server {\n    listen no-such-host.invalid:8080;\n  }\n}\n",
        "host not found in \"no-such-host.invalid:8080\" of the \"listen\" directive",
        3,
    ),
    (
        "listen on a bad port",
        "http {\n  server {\n    listen 127.0.0.1:80800;\n  }\n}\n",
        "invalid port in \"127.0.0.1:80800\" of the \"listen\" directive",
        3,
    ),
    (
        "listen ssl without a certificate",
        "http {\n  server {\n    listen 127.0.0.1:8443 ssl;\n  }\n}\n",
        "no \"ssl_certificate\" is defined for the \"listen ... ssl\" directive",
        3,
    ),
    (
        "listen with unknown parameter",
        "http {\n  server {\n    listen 127.0.0.1:8080 fast;\n  }\n}\n",
        "invalid parameter \"fast\"",
        3,
    ),
    (
        "two default servers on one address",
        "http {\n  server {\n    listen 127.0.0.1:8080 default_server;\n  }\n  server {\n    listen 127.0.0.1:8080 default_server;\n  }\n}\n",
        "a duplicate default server for 127.0.0.1:8080",
        6,
    ),
    (
        "same listen twice in one server",
        "http {\n  server {\n    listen 127.0.0.1:8080;\n    listen 127.0.0.1:8080;\n  }\n}\n",
        "a duplicate listen 127.0.0.1:8080",
        4,
    ),
    (
        "bad server_name wildcard",
        "http {\n  server {\n    server_name w*w.example.com;\n  }\n}\n",
        "invalid server name or wildcard \"w*w.example.com\"",
        3,
    ),
    (
        "bad location regex",
        "http {\n  server {\n    location ~ ^/(api {\n    }\n  }\n}\n",
        "regex \"^/(api\" compile failed: unclosed group",
        3,
    ),
    (
        "bad location modifier",
        "http {\n  server {\n    location ~~ /x {\n    }\n  }\n}\n",
        "invalid location modifier \"~~\"",
        3,
    ),
    (
        "duplicate location",
        "http {\n  server {\n    location /a {\n    }\n    location /a {\n    }\n  }\n}\n",
        "duplicate location \"/a\"",
        5,
    ),
    (
        "nested location outside its parent",
        "http {\n  server {\n    location /a {\n      location /b {\n      }\n    }\n  }\n}\n",
        "location \"/b\" is outside location \"/a\"",
        4,
    ),
    (
        "location inside an exact location",
        "http {\n  server {\n    location = /a {\n      location /a/b {\n      }\n    }\n  }\n}\n",
        "location \"/a/b\" cannot be inside the exact location \"/a\"",
        4,
    ),
    (
        "named location inside a location",
        "http {\n  server {\n    location / {\n      location @fallback {\n      }\n    }\n  }\n}\n",
        "named location \"@fallback\" can be on the server level only",
        4,
    ),
    (
        "alias in a named location",
        "http {\n  server {\n    location @x {\n      alias /tmp/;\n    }\n  }\n}\n",
        "the \"alias\" directive cannot be used inside the named location",
        4,
    ),
    (
        "check with an unknown parameter",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check interval=3000 rize=2;\n  }\n}\n",
        "invalid parameter \"rize=2\"",
        4,
    ),
    (
        "check with a zero interval",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check interval=0;\n  }\n}\n",
        "invalid parameter \"interval=0\"",
        4,
    ),
    (
        "check with a non-numeric fall",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check fall=five;\n  }\n}\n",
        "invalid parameter \"fall=five\"",
        4,
    ),
    (
        "check with an unknown type",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check type=udp;\n  }\n}\n",
        "invalid parameter \"type=udp\"",
        4,
    ),
    (
        "check default_down not a boolean",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check default_down=on;\n  }\n}\n",
        "invalid parameter \"default_down=on\"",
        4,
    ),
    (
        "check with a bad port",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check port=70000;\n  }\n}\n",
        "invalid parameter \"port=70000\"",
        4,
    ),
    (
        "check parameter repeated",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check rise=1 rise=2;\n  }\n}\n",
        "duplicate parameter \"rise\" in \"check\" directive",
        4,
    ),
    (
        "second check in one upstream",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check;\n    check;\n  }\n}\n",
        "\"check\" directive is duplicate",
        5,
    ),
    (
        "check_http_expect_alive with an unknown class",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check type=http;\n    check_http_expect_alive http_2xx http_6xx;\n  }\n}\n",
        "invalid parameter \"http_6xx\"",
        5,
    ),
    (
        "check_http_send without argument",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check_http_send;\n  }\n}\n",
        "invalid number of arguments in \"check_http_send\" directive",
        4,
    ),
    (
        "check_keepalive_requests of zero",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check type=http;\n    check_keepalive_requests 0;\n  }\n}\n",
        "invalid value \"0\" in \"check_keepalive_requests\" directive",
        5,
    ),
    (
        "check_keepalive_requests not a number",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check type=http;\n    check_keepalive_requests many;\n  }\n}\n",
        "invalid value \"many\" in \"check_keepalive_requests\" directive",
        5,
    ),
    (
        "keepalive with a sign",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    keepalive +5;\n  }\n}\n",
        "invalid value \"+5\" in \"keepalive\" directive",
        4,
    ),
    (
        "check_keepalive_requests with a sign",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check type=http;\n    check_keepalive_requests +3;\n  }\n}\n",
        "invalid value \"+3\" in \"check_keepalive_requests\" directive",
        5,
    ),
    (
        "check_keepalive_requests repeated",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check type=http;\n    check_keepalive_requests 10;\n    check_keepalive_requests 20;\n  }\n}\n",
        "\"check_keepalive_requests\" directive is duplicate",
        6,
    ),
    (
        "check_keepalive_requests with two arguments",
        "http {\n  upstream u {\n    server 127.0.0.1:9000;\n    check_keepalive_requests 1 2;\n  }\n}\n",
        "invalid number of arguments in \"check_keepalive_requests\" directive",
        4,
    ),
    (
        "check_keepalive_requests outside upstream",
        "http {\n  check_keepalive_requests 10;\n}\n",
        "\"check_keepalive_requests\" directive is not allowed here",
        2,
    ),
    (
        "check outside upstream",
        "http {\n  server {\n    check interval=1000;\n  }\n}\n",
        "\"check\" directive is not allowed here",
        3,
    ),
    (
        "check_status with an unknown format",
        "http {\n  server {\n    location /status {\n      check_status xml;\n    }\n  }\n}\n",
        "invalid parameter \"xml\"",
        4,
    ),
    (
        "check_status at server level",
        "http {\n  server {\n    check_status;\n  }\n}\n",
        "\"check_status\" directive is not allowed here",
        3,
    ),
    (
        "check_status together with proxy_pass",
        "http {\n  server {\n    location /s {\n      check_status;\n      proxy_pass http://127.0.0.1:9000;\n    }\n  }\n}\n",
        "\"check_status\" cannot be combined with \"proxy_pass\" or \"return\" in one location",
        3,
    ),
    (
        "server drain with a value",
        "http {\n  upstream u {\n    server 127.0.0.1:9000 drain=1;\n  }\n}\n",
        "invalid parameter \"drain=1\"",
        3,
    ),
    // ---- nginx names the line where a directive ends ----
    (
        "multi-line directive: error at its semicolon",
        "http {\n  server {\n    listen 127.0.0.1:8080\n           bogus\n           ;\n  }\n}\n",
        "invalid parameter \"bogus\"",
        5,
    ),
    (
        "multi-line block opener: error at its brace",
        "http {\n  server {\n    location\n      /a\n      /b\n      /c\n    {\n    }\n  }\n}\n",
        "invalid number of arguments in \"location\" directive",
        7,
    ),
    (
        "multi-line unknown directive",
        "http {\n  proxy_pas\n    http://a\n    ;\n}\n",
        "unknown directive \"proxy_pas\"",
        4,
    ),
    // ---- several errors: the first in file order is reported ----
    (
        "error in a location before an error at server level",
        "http {\n  server {\n    location / {\n      bad_one;\n    }\n    bad_two;\n  }\n}\n",
        "unknown directive \"bad_one\"",
        4,
    ),
    (
        "error in a server before an error at http level",
        "http {\n  server {\n    bad_one;\n  }\n  bad_two;\n}\n",
        "unknown directive \"bad_one\"",
        3,
    ),
    (
        "error in a server before an error in a later upstream",
        "http {\n  server {\n    bad_one;\n  }\n  upstream u {\n    bad_two;\n  }\n}\n",
        "unknown directive \"bad_one\"",
        3,
    ),
    (
        "proxy_pass to a later broken upstream reports the upstream's error",
        "http {\n  server {\n    location / { proxy_pass http://u; }\n  }\n  upstream u {\n    server 127.0.0.1:1 weight=x;\n  }\n}\n",
        "invalid parameter \"weight=x\"",
        6,
    ),
    (
        "error in an upstream before an error in a later server",
        "http {\n  upstream u {\n    bad_one;\n  }\n  server {\n    bad_two;\n  }\n}\n",
        "unknown directive \"bad_one\"",
        3,
    ),
    (
        "error at http level before an error in a later server",
        "http {\n  bad_one;\n  server {\n    bad_two;\n  }\n}\n",
        "unknown directive \"bad_one\"",
        2,
    ),
];

#[test]
fn broken_configs_fail_with_nginx_message_and_line() {
    assert!(CASES.len() >= 45, "only {} cases", CASES.len());
    let mut failures = Vec::new();
    for (name, src, message, line) in CASES {
        let e = load_err(src);
        let got_line = e.span.as_ref().map_or(0, |s| s.line);
        if e.message != *message || got_line != *line {
            failures.push(format!(
                "{name}:\n  expected {message:?} at line {line}\n  got      {:?} at line {got_line}",
                e.message
            ));
        }
        if let Some(span) = &e.span {
            assert_eq!(span.file.as_path(), Path::new(FILE), "{name}");
            assert_eq!(e.to_string(), format!("{} in {FILE}:{got_line}", e.message));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "sticky-proxy-config-errors-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn include_cycle_is_rejected() {
    let dir = TempDir::new("cycle");
    let main = dir.write("main.conf", "http {\n  include a.conf;\n}\n");
    dir.write("a.conf", "# a\ninclude b.conf;\n");
    dir.write("b.conf", "\n\ninclude a.conf;\n");
    let e = load(&main).expect_err("cycle must fail");
    assert!(
        e.message.contains("cycle") || e.message.contains("recursive"),
        "{e}"
    );
    let span = e.span.clone().expect("span");
    assert_eq!(span.line, 3, "{e}");
    assert!(span.file.ends_with("b.conf"), "{e}");
}

#[test]
fn include_of_missing_file_is_rejected() {
    let dir = TempDir::new("missing");
    let main = dir.write("main.conf", "http {\n\n  include nope.conf;\n}\n");
    let e = load(&main).expect_err("missing include must fail");
    let expected = format!(
        "open() \"{}\" failed (2: No such file or directory)",
        dir.0.join("nope.conf").display()
    );
    assert_eq!(e.message, expected);
    assert_eq!(e.span.expect("span").line, 3);
}

#[test]
fn errors_in_included_files_name_that_file_and_line() {
    let dir = TempDir::new("inner");
    let main = dir.write("main.conf", "http {\n  include conf.d/*.conf;\n}\n");
    std::fs::create_dir_all(dir.0.join("conf.d")).expect("mkdir");
    dir.write(
        "conf.d/a.conf",
        "upstream a {\n  server 127.0.0.1:9000;\n}\n",
    );
    dir.write(
        "conf.d/b.conf",
        "server {\n  listen 127.0.0.1:8080;\n  bogus on;\n}\n",
    );
    let e = load(&main).expect_err("must fail");
    assert_eq!(e.message, "unknown directive \"bogus\"");
    let span = e.span.clone().expect("span");
    assert_eq!(span.line, 3);
    assert!(span.file.ends_with("conf.d/b.conf"), "{e}");
}
