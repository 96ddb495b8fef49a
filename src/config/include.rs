//! Reading configuration files and expanding `include PATH;` wherever it appears.
//!
//! PATH is relative to the directory of the main file (nginx uses its conf prefix,
//! which is the same directory for the usual layout). A PATH containing `*`, `?` or
//! `[` is a glob: the matching files (hidden ones only when the pattern names the dot)
//! are read in sorted order, and a glob matching nothing is fine; any other PATH must
//! exist. The included directives replace the `include` directive in place and keep
//! their own file and line. A file that includes itself, directly or through others,
//! is an error naming the chain. Only regular files are read, at most
//! [`MAX_FILE_BYTES`] each and [`MAX_FILES`] in all, so a hostile configuration
//! cannot make loading hang or run away; nesting depth is capped by
//! [`super::parse::MAX_DEPTH`] across files. Error texts follow nginx's
//! (`open() "/x" failed (2: No such file or directory)`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ast::{Directive, Span};
use super::error::ConfigError;
use super::parse::parse_at_depth;

/// The largest configuration file read (8 MiB).
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// The most files read for one configuration, the main file included.
pub const MAX_FILES: usize = 1024;

/// Reads the main file at `path` and expands its includes.
pub fn load(path: &Path) -> Result<Vec<Directive>, ConfigError> {
    let src = read_file(path).map_err(ConfigError::without_span)?;
    load_str(&src, path)
}

/// Parses `src` as the text of the main file `file` (used for messages and as the
/// base of relative include paths) and expands its includes.
pub fn load_str(src: &[u8], file: &Path) -> Result<Vec<Directive>, ConfigError> {
    Expander::new(file, false).run(src, file)
}

/// One file read for a configuration, as it was read (for `-T`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Vec<u8>,
}

/// Like [`load`], also giving every file read, each once, in the order first read
/// (the main file first): what `-T` prints.
pub fn load_with_sources(path: &Path) -> Result<(Vec<Directive>, Vec<SourceFile>), ConfigError> {
    let src = read_file(path).map_err(ConfigError::without_span)?;
    let mut expander = Expander::new(path, true);
    expander.keep(path, &src);
    let tree = expander.run(&src, path)?;
    Ok((tree, expander.sources))
}

struct Expander {
    /// The main file's directory.
    base: PathBuf,
    /// The files being read, outermost first: (identity for cycle checks, path as
    /// named in messages).
    open: Vec<(PathBuf, PathBuf)>,
    files_read: usize,
    /// Whether to keep each file's text in `sources`.
    keep_sources: bool,
    sources: Vec<SourceFile>,
}

impl Expander {
    fn new(file: &Path, keep_sources: bool) -> Expander {
        Expander {
            base: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            open: vec![(identity(file), file.to_path_buf())],
            files_read: 1,
            keep_sources,
            sources: Vec::new(),
        }
    }

    fn run(&mut self, src: &[u8], file: &Path) -> Result<Vec<Directive>, ConfigError> {
        let tree = parse_at_depth(src, Arc::new(file.to_path_buf()), 0)?;
        self.expand(tree, 0)
    }

    /// Records a file's text for `-T`, once per path.
    fn keep(&mut self, path: &Path, text: &[u8]) {
        if self.keep_sources && !self.sources.iter().any(|s| s.path == path) {
            self.sources.push(SourceFile {
                path: path.to_path_buf(),
                text: text.to_vec(),
            });
        }
    }

    /// Expands the includes in `tree`, whose directives sit `depth` blocks deep.
    fn expand(
        &mut self,
        tree: Vec<Directive>,
        depth: usize,
    ) -> Result<Vec<Directive>, ConfigError> {
        let mut out = Vec::with_capacity(tree.len());
        for mut directive in tree {
            if directive.name == "include" {
                for path in self.include_targets(&directive)? {
                    out.extend(self.include_file(&path, &directive.span, depth)?);
                }
                continue;
            }
            if let Some(block) = directive.block.take() {
                directive.block = Some(self.expand(block, depth + 1)?);
            }
            out.push(directive);
        }
        Ok(out)
    }

    /// The files an `include` directive names, in the order they are read.
    fn include_targets(&self, directive: &Directive) -> Result<Vec<PathBuf>, ConfigError> {
        if directive.block.is_some() {
            return Err(ConfigError::new(
                "directive \"include\" is not terminated by \";\"",
                &directive.span,
            ));
        }
        let [arg] = directive.args.as_slice() else {
            return Err(ConfigError::new(
                "invalid number of arguments in \"include\" directive",
                &directive.span,
            ));
        };
        if !arg.value.contains(['*', '?', '[']) {
            return Ok(vec![self.base.join(&arg.value)]);
        }
        // The base directory is literal text even if it contains glob characters.
        let pattern = if Path::new(&arg.value).is_absolute() || self.base.as_os_str().is_empty() {
            arg.value.clone()
        } else {
            let base = glob::Pattern::escape(&self.base.to_string_lossy());
            format!("{}/{}", base.trim_end_matches('/'), arg.value)
        };
        glob_files(&pattern, &arg.span)
    }

    fn include_file(
        &mut self,
        path: &Path,
        at: &Span,
        depth: usize,
    ) -> Result<Vec<Directive>, ConfigError> {
        let id = identity(path);
        if let Some(first) = self.open.iter().position(|(open, _)| *open == id) {
            let chain: Vec<String> = self
                .open
                .iter()
                .skip(first)
                .map(|(_, named)| format!("\"{}\"", named.display()))
                .chain(std::iter::once(format!("\"{}\"", path.display())))
                .collect();
            return Err(ConfigError::new(
                format!("include cycle: {}", chain.join(" -> ")),
                at,
            ));
        }
        self.files_read += 1;
        if self.files_read > MAX_FILES {
            return Err(ConfigError::new(
                format!("too many included files (more than {MAX_FILES})"),
                at,
            ));
        }
        let src = read_file(path).map_err(|message| ConfigError::new(message, at))?;
        self.keep(path, &src);
        let tree = parse_at_depth(&src, Arc::new(path.to_path_buf()), depth)?;
        self.open.push((id, path.to_path_buf()));
        let expanded = self.expand(tree, depth);
        self.open.pop();
        expanded
    }
}

/// The files matching the glob `pattern`, sorted. POSIX glob (what nginx uses) has
/// no recursive `**`, so runs of `*` are read as one `*`.
fn glob_files(text: &str, at: &Span) -> Result<Vec<PathBuf>, ConfigError> {
    let mut collapsed = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c == '*' && collapsed.ends_with('*')) {
            collapsed.push(c);
        }
    }
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let entries = glob::glob_with(&collapsed, options).map_err(|e| {
        ConfigError::new(format!("invalid include pattern \"{text}\": {}", e.msg), at)
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let file = entry.map_err(|e| {
            ConfigError::new(
                format!("glob() \"{text}\" failed {}", os_error(e.error())),
                at,
            )
        })?;
        files.push(file);
        if files.len() > MAX_FILES {
            return Err(ConfigError::new(
                format!("include \"{text}\" matches more than {MAX_FILES} files"),
                at,
            ));
        }
    }
    files.sort();
    Ok(files)
}

/// What identifies a file for cycle detection: its canonical path when it exists.
fn identity(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Reads a whole configuration file, or gives nginx's message for why not.
fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    // Look before opening: opening a FIFO or a device could block or never end.
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("open() \"{shown}\" failed {}", os_error(&e)))?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(format!("\"{shown}\" is not a regular file"));
    }
    let file = std::fs::File::open(path)
        .map_err(|e| format!("open() \"{shown}\" failed {}", os_error(&e)))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("fstat() \"{shown}\" failed {}", os_error(&e)))?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(format!("\"{shown}\" is not a regular file"));
    }
    let mut src = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut src)
        .map_err(|e| format!("read() \"{shown}\" failed {}", os_error(&e)))?;
    if src.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "\"{shown}\" is too large (more than {} MiB)",
            MAX_FILE_BYTES / 1024 / 1024
        ));
    }
    Ok(src)
}

/// An I/O error as nginx prints it after a failed call: `(2: No such file or
/// directory)`. Shared with the binary's messages.
pub fn os_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let suffix = format!(" (os error {code})");
            let text = text.strip_suffix(&suffix).unwrap_or(&text);
            format!("({code}: {text})")
        }
        None => format!("({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("sticky-include-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.0.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("create dir");
            }
            std::fs::write(&path, text).expect("write file");
            path
        }

        fn path(&self, rel: &str) -> String {
            self.0.join(rel).display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// `name@file:line` for every directive, depth-first, file relative to `dir`.
    fn places(tree: &[Directive], dir: &TempDir) -> Vec<String> {
        let mut out = Vec::new();
        for d in tree {
            let file = d.span.file.strip_prefix(&dir.0).unwrap_or(&d.span.file);
            let args: Vec<&str> = d.args.iter().map(|a| a.value.as_str()).collect();
            out.push(format!(
                "{}{}@{}:{}",
                d.name,
                if args.is_empty() {
                    String::new()
                } else {
                    format!(" {}", args.join(" "))
                },
                file.display(),
                d.span.line
            ));
            if let Some(block) = &d.block {
                out.extend(places(block, dir));
            }
        }
        out
    }

    #[test]
    fn include_splices_files_in_place_with_their_own_lines() {
        let dir = TempDir::new("splice");
        dir.write("mime.types", "types {\n    text/html html;\n}\n");
        dir.write("sub/up.conf", "\n\nupstream app { server 127.0.0.1:1; }\n");
        let main = dir.write(
            "main.conf",
            "http {\n    include mime.types;\n    include sub/up.conf;\n    server {}\n}\n",
        );
        let tree = load(&main).expect("loads");
        assert_eq!(
            places(&tree, &dir),
            vec![
                "http@main.conf:1",
                "types@mime.types:1",
                "text/html html@mime.types:2",
                "upstream app@sub/up.conf:3",
                "server 127.0.0.1:1@sub/up.conf:3",
                "server@main.conf:4",
            ]
        );
    }

    #[test]
    fn nested_includes_are_relative_to_the_main_file() {
        let dir = TempDir::new("relative");
        dir.write("conf.d/a.conf", "include conf.d/b.conf;\na;\n");
        dir.write("conf.d/b.conf", "b;\n");
        let main = dir.write("main.conf", "include conf.d/a.conf;\n");
        let tree = load(&main).expect("loads");
        assert_eq!(
            places(&tree, &dir),
            vec!["b@conf.d/b.conf:1", "a@conf.d/a.conf:2"]
        );
    }

    #[test]
    fn globs_read_matching_files_sorted_and_skip_hidden_ones() {
        let dir = TempDir::new("glob");
        dir.write("conf.d/20-b.conf", "b;");
        dir.write("conf.d/10-a.conf", "a;");
        dir.write("conf.d/30-c.conf", "c;");
        dir.write("conf.d/.hidden.conf", "hidden;");
        dir.write("conf.d/notes.txt", "not included;");
        let main = dir.write(
            "main.conf",
            "include conf.d/*.conf;\ninclude none/*.conf;\ninclude conf.d/1?-[a]**.conf;\n",
        );
        let tree = load(&main).expect("loads");
        let names: Vec<&str> = tree.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, vec!["a", "b", "c", "a"]);
    }

    #[test]
    fn glob_characters_in_the_main_directory_are_literal() {
        let dir = TempDir::new("literal[x]*");
        dir.write("conf.d/a.conf", "a;");
        let main = dir.write("main.conf", "include conf.d/*.conf;\n");
        let tree = load(&main).expect("loads");
        assert_eq!(places(&tree, &dir), vec!["a@conf.d/a.conf:1"]);
    }

    #[test]
    fn the_same_file_may_be_included_twice_without_a_cycle() {
        let dir = TempDir::new("diamond");
        dir.write("common.conf", "x;");
        dir.write("a.conf", "include common.conf;");
        let main = dir.write("main.conf", "include a.conf;\ninclude common.conf;\n");
        let tree = load(&main).expect("loads");
        assert_eq!(tree.len(), 2);
    }

    #[test]
    fn include_errors_say_what_and_where() {
        let dir = TempDir::new("errors");
        dir.write("self.conf", "include self.conf;\n");
        dir.write("a.conf", "\ninclude b.conf;\n");
        dir.write("b.conf", "include a.conf;\n");
        dir.write("broken.conf", "ok;\nx {\n");
        dir.write("glob/x.conf", "y;\n}\n");
        std::fs::create_dir_all(dir.0.join("adir")).expect("mkdir");
        let main_path = dir.path("main.conf");
        let cases: Vec<(&str, String)> = vec![
            (
                "a;\ninclude missing.conf;",
                format!(
                    "open() \"{}\" failed (2: No such file or directory) in {main_path}:2",
                    dir.path("missing.conf")
                ),
            ),
            (
                "include self.conf;",
                format!(
                    "include cycle: \"{0}\" -> \"{0}\" in {0}:1",
                    dir.path("self.conf")
                ),
            ),
            (
                "include a.conf;",
                format!(
                    "include cycle: \"{}\" -> \"{}\" -> \"{}\" in {}:1",
                    dir.path("a.conf"),
                    dir.path("b.conf"),
                    dir.path("a.conf"),
                    dir.path("b.conf")
                ),
            ),
            (
                "include main.conf;",
                format!("include cycle: \"{main_path}\" -> \"{main_path}\" in {main_path}:1"),
            ),
            (
                "\ninclude;",
                format!("invalid number of arguments in \"include\" directive in {main_path}:2"),
            ),
            (
                "include a.conf b.conf;",
                format!("invalid number of arguments in \"include\" directive in {main_path}:1"),
            ),
            (
                "include a.conf { }",
                format!("directive \"include\" is not terminated by \";\" in {main_path}:1"),
            ),
            (
                "http {\n include broken.conf;\n}",
                format!(
                    "unexpected end of file, expecting \"}}\" in {}:3",
                    dir.path("broken.conf")
                ),
            ),
            (
                "include glob/*.conf;",
                format!("unexpected \"}}\" in {}:2", dir.path("glob/x.conf")),
            ),
            (
                "include adir;",
                format!(
                    "read() \"{}\" failed (21: Is a directory) in {main_path}:1",
                    dir.path("adir")
                ),
            ),
            (
                "include /dev/null/x;",
                format!("open() \"/dev/null/x\" failed (20: Not a directory) in {main_path}:1"),
            ),
            (
                "include /dev/zero;",
                format!("\"/dev/zero\" is not a regular file in {main_path}:1"),
            ),
        ];
        for (src, want) in cases {
            let main = dir.write("main.conf", src);
            let err = load(&main).expect_err(src);
            assert_eq!(err.to_string(), want, "source {src:?}");
        }
    }

    #[test]
    fn missing_main_file_is_reported_like_nginx() {
        let err = load(Path::new("/nonexistent-dir/sticky.conf")).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "open() \"/nonexistent-dir/sticky.conf\" failed (2: No such file or directory)"
        );
        assert_eq!(err.span, None);
    }

    #[test]
    fn load_str_resolves_includes_next_to_the_notional_file() {
        let fuzz = Path::new("/nonexistent-fuzz/fuzz.conf");
        let err = load_str(b"include x.conf;", fuzz).expect_err("no such dir");
        assert_eq!(
            err.to_string(),
            "open() \"/nonexistent-fuzz/x.conf\" failed (2: No such file or directory) \
             in /nonexistent-fuzz/fuzz.conf:1"
        );
        let tree = load_str(b"include *.conf; a;", fuzz).expect("empty glob is fine");
        assert_eq!(tree.len(), 1);
    }

    #[test]
    fn nesting_depth_counts_across_included_files() {
        let dir = TempDir::new("depth");
        let half = super::super::parse::MAX_DEPTH / 2 + 1;
        dir.write("inner.conf", &("b{".repeat(half) + &"}".repeat(half)));
        let main = dir.write(
            "main.conf",
            &("a{".repeat(half) + "include inner.conf;" + &"}".repeat(half)),
        );
        let err = load(&main).expect_err("too deep overall");
        assert!(err.message.starts_with("too deeply nested blocks"), "{err}");
    }
}
