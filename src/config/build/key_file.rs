//! `session_sticky key_file=PATH` (ours): the one file the sticky builder
//! reads. One key per line, first line first (the signing key); blank lines
//! and lines starting with `#` are skipped, surrounding whitespace is not part
//! of a key. A relative PATH is taken from the directory of the file that holds
//! the directive (not the main file's, as nginx's own file arguments are: a
//! rule kept so existing configurations keep working).

use std::path::{Path, PathBuf};

/// Where `path` (as written in the file `conf_file`) is.
pub(super) fn resolve(conf_file: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    conf_file.parent().unwrap_or(Path::new("")).join(p)
}

/// The keys in the file at `path`, or nginx's error text for it.
pub(super) fn read(path: &Path) -> Result<Vec<Vec<u8>>, String> {
    let text =
        std::fs::read(path).map_err(|e| format!("open() \"{}\" failed ({e})", path.display()))?;
    Ok(parse(&text))
}

/// The keys of a key file's text.
pub(super) fn parse(text: &[u8]) -> Vec<Vec<u8>> {
    text.split(|b| *b == b'\n')
        .map(|line| line.trim_ascii())
        .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_line_comments_and_blanks_skipped() {
        let keys = parse(b"# rotated 2026-12-04\n  new-key-0123456789  \r\n\nold-key-0123456789\n");
        assert_eq!(
            keys,
            vec![
                b"new-key-0123456789".to_vec(),
                b"old-key-0123456789".to_vec()
            ]
        );
        assert!(parse(b"\n# only a comment\n").is_empty());
    }

    #[test]
    fn relative_paths_are_next_to_the_config_file() {
        let conf = Path::new("/etc/proxy/conf.d/app.conf");
        assert_eq!(
            resolve(conf, "keys/sticky"),
            Path::new("/etc/proxy/conf.d/keys/sticky")
        );
        assert_eq!(resolve(conf, "/run/keys"), Path::new("/run/keys"));
    }
}
