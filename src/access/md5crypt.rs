//! The MD5-based `crypt` of FreeBSD (`$1$`) and its Apache variant (`$apr1$`,
//! what `htpasswd -m` writes), which nginx's `ngx_crypt` computes itself. No
//! well-kept crate covers `$apr1$`, so the algorithm is written here over the
//! `md-5` crate (the digest is not hand-written), and checked against OpenSSL's
//! `openssl passwd -1` / `-apr1` outputs.

use md5::{Digest, Md5};

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Hashes `password` with the settings of `setting` (`$1$SALT$...` or
/// `$apr1$SALT$...`; the salt is at most 8 bytes and ends at `$`). `None` when
/// `setting` has neither prefix.
pub fn crypt(password: &[u8], setting: &str) -> Option<String> {
    let magic = ["$1$", "$apr1$"]
        .into_iter()
        .find(|m| setting.starts_with(m))?;
    let rest = setting.get(magic.len()..)?;
    let salt_end = rest.find('$').unwrap_or(rest.len()).min(8);
    let salt = rest.get(..salt_end)?.as_bytes();

    let mut alt = Md5::new();
    alt.update(password);
    alt.update(salt);
    alt.update(password);
    let alt = alt.finalize();

    let mut ctx = Md5::new();
    ctx.update(password);
    ctx.update(magic.as_bytes());
    ctx.update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        ctx.update(alt.get(..n).unwrap_or_default());
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            ctx.update([0u8]);
        } else {
            ctx.update(password.get(..1).unwrap_or_default());
        }
        i >>= 1;
    }
    let mut fin = ctx.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(fin);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(fin);
        } else {
            c.update(password);
        }
        fin = c.finalize();
    }
    let b = |i: usize| u32::from(fin.get(i).copied().unwrap_or(0));
    let mut out = String::with_capacity(magic.len() + salt.len() + 23);
    out.push_str(magic);
    out.push_str(std::str::from_utf8(salt).ok()?);
    out.push('$');
    for (x, y, z) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        to64(&mut out, (b(x) << 16) | (b(y) << 8) | b(z), 4);
    }
    to64(&mut out, b(11), 2);
    Some(out)
}

fn to64(out: &mut String, mut v: u32, n: usize) {
    for _ in 0..n {
        // `v & 0x3f` is below 64: always a character of the alphabet.
        out.extend(ITOA64.get((v & 0x3f) as usize).map(|&c| char::from(c)));
        v >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_openssl_passwd() {
        // `openssl passwd -1 -salt S P` / `-apr1`.
        let cases: &[(&str, &str)] = &[
            ("password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
            ("hello", "$apr1$xxxxxxxx$UsjyEfxdeTXovFtZc38sn/"),
            ("", "$apr1$ab$S8K6Sgp3W8c9Jb6LxgywZ."),
            (
                "a-much-longer-password-than-sixteen",
                "$1$12345678$cByOrzWsVILVYR.UXzR511",
            ),
        ];
        for (pw, hash) in cases {
            assert_eq!(crypt(pw.as_bytes(), hash).as_deref(), Some(*hash), "{pw}");
        }
        assert_eq!(crypt(b"x", "$5$abc$"), None);
    }
}
