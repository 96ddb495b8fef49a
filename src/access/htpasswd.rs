//! `auth_basic_user_file`: finding a user's line and checking a password
//! against it, in every format nginx's `ngx_crypt` (with glibc/libxcrypt's
//! `crypt(3)` behind it) accepts: `{PLAIN}`, `{SHA}`, `{SSHA}`, `$apr1$` and
//! `$1$` (MD5-crypt), `$5$`/`$6$` (SHA-crypt), `$2a$`/`$2b$`/`$2y$` (bcrypt).
//! The traditional DES `crypt` (13 characters, no prefix) is not supported:
//! [`Verdict::Unsupported`].
//!
//! File format (nginx): one `user:hash[:comment]` per line, `#` starts a
//! comment line, CR or LF end a line.

use sha1::{Digest, Sha1};

use crate::access::md5crypt;

/// The result of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Match,
    Mismatch,
    /// The stored hash has a format we cannot check.
    Unsupported,
}

/// The stored hash of `user` in the file text `file`, if the user has a line.
pub fn find_user<'a>(file: &'a [u8], user: &[u8]) -> Option<&'a [u8]> {
    file.split(|&b| b == b'\n' || b == b'\r').find_map(|line| {
        if line.first() == Some(&b'#') {
            return None;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, rest) = line.split_at(colon);
        if name != user {
            return None;
        }
        let hash = rest.get(1..).unwrap_or_default();
        Some(hash.split(|&b| b == b':').next().unwrap_or_default())
    })
}

/// Checks `password` against the stored `hash`.
pub fn verify(password: &[u8], hash: &[u8]) -> Verdict {
    let same = |ok: bool| {
        if ok {
            Verdict::Match
        } else {
            Verdict::Mismatch
        }
    };
    if let Some(plain) = hash.strip_prefix(b"{PLAIN}") {
        return same(plain == password);
    }
    if let Some(b64) = hash.strip_prefix(b"{SHA}") {
        let Some(stored) = crate::base64::decode(b64) else {
            return Verdict::Mismatch;
        };
        return same(Sha1::digest(password).as_slice() == stored.as_slice());
    }
    if let Some(b64) = hash.strip_prefix(b"{SSHA}") {
        let Some(stored) = crate::base64::decode(b64) else {
            return Verdict::Mismatch;
        };
        if stored.len() < 20 {
            return Verdict::Mismatch;
        }
        let (digest, salt) = stored.split_at(20);
        let mut h = Sha1::new();
        h.update(password);
        h.update(salt);
        return same(h.finalize().as_slice() == digest);
    }
    let Ok(text) = std::str::from_utf8(hash) else {
        return Verdict::Unsupported;
    };
    if text.starts_with("$1$") || text.starts_with("$apr1$") {
        return same(md5crypt::crypt(password, text).as_deref() == Some(text));
    }
    if text.starts_with("$5$") || text.starts_with("$6$") {
        let Ok(pw) = std::str::from_utf8(password) else {
            return Verdict::Mismatch;
        };
        let checked = if text.starts_with("$5$") {
            sha_crypt::sha256_check(pw, text)
        } else {
            sha_crypt::sha512_check(pw, text)
        };
        return same(checked.is_ok());
    }
    if ["$2a$", "$2b$", "$2y$", "$2x$"]
        .iter()
        .any(|p| text.starts_with(p))
    {
        return match bcrypt::verify(password, text) {
            Ok(ok) => same(ok),
            Err(_) => Verdict::Mismatch,
        };
    }
    Verdict::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_nginx_accepts() {
        // Hashes of "secret" (OpenSSL / Python hashlib), and the OpenBSD bcrypt
        // test vector for "U*U".
        let cases: &[(&str, &str, Verdict)] = &[
            ("secret", "{PLAIN}secret", Verdict::Match),
            ("Secret", "{PLAIN}secret", Verdict::Mismatch),
            ("secret", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", Verdict::Match),
            ("secreT", "{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=", Verdict::Mismatch),
            ("secret", "{SSHA}UgCJjM+VJJYduihDuk0aPpDtY9RzYWx0eQ==", Verdict::Match),
            ("other", "{SSHA}UgCJjM+VJJYduihDuk0aPpDtY9RzYWx0eQ==", Verdict::Mismatch),
            ("secret", "{SSHA}AAAA", Verdict::Mismatch),
            ("hello", "$apr1$xxxxxxxx$UsjyEfxdeTXovFtZc38sn/", Verdict::Match),
            ("hellO", "$apr1$xxxxxxxx$UsjyEfxdeTXovFtZc38sn/", Verdict::Mismatch),
            ("password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/", Verdict::Match),
            (
                "secret",
                "$5$saltstring$C3o4O1TC6aRHF4FI.QSZMXtHbaj2gSXr4sUc/3NcUi.",
                Verdict::Match,
            ),
            (
                "secret",
                "$6$saltstring$AIsRs/Ee56G/tC8MEHhvReZTfx8u3rXXMl6eYrjCG9ibix19DxoMBLogdTET5Ukw9Sf7eZTITsuk0Ry5qulYz.",
                Verdict::Match,
            ),
            (
                "wrong",
                "$6$saltstring$AIsRs/Ee56G/tC8MEHhvReZTfx8u3rXXMl6eYrjCG9ibix19DxoMBLogdTET5Ukw9Sf7eZTITsuk0Ry5qulYz.",
                Verdict::Mismatch,
            ),
            (
                "U*U",
                "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                Verdict::Match,
            ),
            (
                "U*U",
                "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                Verdict::Match,
            ),
            (
                "U*V",
                "$2y$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                Verdict::Mismatch,
            ),
            ("secret", "$2y$05$short", Verdict::Mismatch),
            ("secret", "abJnggxhB/yWI", Verdict::Unsupported),
        ];
        for (pw, hash, want) in cases {
            assert_eq!(verify(pw.as_bytes(), hash.as_bytes()), *want, "{pw} {hash}");
        }
    }

    #[test]
    fn users_are_found_like_nginx_reads_the_file() {
        let file = b"# admin:{PLAIN}nope\nadmin:{PLAIN}a:Full Name\r\nbob:{PLAIN}b\n\nx\ncarol:\n";
        assert_eq!(find_user(file, b"admin"), Some(&b"{PLAIN}a"[..]));
        assert_eq!(find_user(file, b"bob"), Some(&b"{PLAIN}b"[..]));
        assert_eq!(find_user(file, b"carol"), Some(&b""[..]));
        assert_eq!(find_user(file, b"# admin"), None);
        assert_eq!(find_user(file, b"x"), None);
        assert_eq!(find_user(file, b"dave"), None);
    }
}
