//! The nginx configuration syntax: bytes in, a tree of [`Directive`]s out, every
//! directive and argument tagged with its file and line; and [`dump`], which writes a
//! tree back as text that parses to the same tree.
//!
//! Tokens are read with `nom` exactly as nginx's `ngx_conf_read_token` splits them:
//! bare words end at whitespace, `;`, `{` or `}` (`}` also ends a word here, which
//! nginx does not do, see `spec/config.md`); `#` at the start of a token comments out
//! the rest of the line; `"..."` and `'...'` may span lines; a backslash keeps the next
//! byte in the word and `\" \' \\ \n \t \r` are unescaped while any other `\x` is kept
//! as written; `$var` and `${var}` are kept as text. The block structure is built
//! with an explicit stack (no recursion), capped at [`MAX_DEPTH`] nested blocks, so no
//! input can exhaust the stack. Error texts are nginx's (`unexpected "}"`,
//! `unexpected end of file, expecting ";" or "}"`, ...), with the line where nginx
//! reports them. Pure: no I/O (includes are expanded by [`super::include`]).

use std::path::PathBuf;
use std::sync::Arc;

use nom::branch::alt;
use nom::bytes::complete::{tag, take, take_till, take_while, take_while1};
use nom::combinator::{opt, recognize};
use nom::multi::{many0_count, many1_count};
use nom::sequence::{pair, preceded, tuple};
use nom::IResult;

use super::ast::{Arg, Directive, Span};
use super::error::ConfigError;

/// The deepest nesting of blocks accepted (`http { server { location { ...`), counted
/// across included files. Real configurations use fewer than ten.
pub const MAX_DEPTH: usize = 100;

/// Parses one file's text. `file` is the name used in spans and messages.
/// `include` directives are left in the tree (see [`super::include`]).
pub fn parse(src: &[u8], file: Arc<PathBuf>) -> Result<Vec<Directive>, ConfigError> {
    parse_at_depth(src, file, 0)
}

/// Like [`parse`] for a file whose directives will sit `depth` blocks deep (an
/// included file), so that the [`MAX_DEPTH`] cap holds across includes.
pub(crate) fn parse_at_depth(
    src: &[u8],
    file: Arc<PathBuf>,
    depth: usize,
) -> Result<Vec<Directive>, ConfigError> {
    let mut lexer = Lexer {
        rest: src,
        line: 1,
        file,
    };
    // Open blocks: the directive that opened each one and its parent's list so far.
    let mut stack: Vec<(Directive, Vec<Directive>)> = Vec::new();
    let mut current: Vec<Directive> = Vec::new();
    let mut args: Vec<Arg> = Vec::new();

    loop {
        match lexer.next_token()? {
            Token::Word(arg) => args.push(arg),
            Token::Semicolon(line) => {
                let directive = take_directive(&mut args, ";", &lexer.span(line))?;
                current.push(directive);
            }
            Token::Open(line) => {
                let directive = take_directive(&mut args, "{", &lexer.span(line))?;
                if depth + stack.len() >= MAX_DEPTH {
                    return Err(ConfigError::new(
                        format!("too deeply nested blocks (more than {MAX_DEPTH} levels)"),
                        &directive.span,
                    ));
                }
                stack.push((directive, std::mem::take(&mut current)));
            }
            Token::Close(line) => {
                if !args.is_empty() {
                    return Err(ConfigError::new("unexpected \"}\"", &lexer.span(line)));
                }
                let Some((mut directive, parent)) = stack.pop() else {
                    return Err(ConfigError::new("unexpected \"}\"", &lexer.span(line)));
                };
                directive.block = Some(std::mem::replace(&mut current, parent));
                current.push(directive);
            }
            Token::End(line) => {
                if !args.is_empty() {
                    return Err(ConfigError::new(
                        "unexpected end of file, expecting \";\" or \"}\"",
                        &lexer.span(line),
                    ));
                }
                if !stack.is_empty() {
                    return Err(ConfigError::new(
                        "unexpected end of file, expecting \"}\"",
                        &lexer.span(line),
                    ));
                }
                return Ok(current);
            }
        }
    }
}

/// Turns the words read so far into a directive (name + arguments) ended by `end`.
fn take_directive(args: &mut Vec<Arg>, end: &str, at: &Span) -> Result<Directive, ConfigError> {
    let mut words = std::mem::take(args).into_iter();
    let Some(name) = words.next() else {
        return Err(ConfigError::new(format!("unexpected \"{end}\""), at));
    };
    Ok(Directive {
        name: name.value,
        args: words.collect(),
        block: None,
        span: name.span,
    })
}

enum Token {
    Word(Arg),
    Semicolon(u32),
    Open(u32),
    Close(u32),
    /// End of input, with the line nginx reports for it.
    End(u32),
}

struct Lexer<'a> {
    rest: &'a [u8],
    line: u32,
    file: Arc<PathBuf>,
}

impl<'a> Lexer<'a> {
    fn span(&self, line: u32) -> Span {
        Span {
            file: Arc::clone(&self.file),
            line,
        }
    }

    /// Moves past `consumed` (a prefix of `rest`), counting its newlines.
    fn advance(&mut self, rest: &'a [u8], consumed: &[u8]) {
        let newlines = consumed.iter().filter(|&&b| b == b'\n').count();
        self.line = self
            .line
            .saturating_add(u32::try_from(newlines).unwrap_or(u32::MAX));
        self.rest = rest;
    }

    fn eof_error(&self) -> ConfigError {
        ConfigError::new(
            "unexpected end of file, expecting \";\" or \"}\"",
            &self.span(self.line),
        )
    }

    fn next_token(&mut self) -> Result<Token, ConfigError> {
        if let Ok((rest, skipped)) = recognize(blank)(self.rest) {
            self.advance(rest, skipped);
        }
        let line = self.line;
        let Some(&first) = self.rest.first() else {
            return Ok(Token::End(line));
        };
        match first {
            b';' | b'{' | b'}' => {
                self.rest = self.rest.get(1..).unwrap_or_default();
                Ok(match first {
                    b';' => Token::Semicolon(line),
                    b'{' => Token::Open(line),
                    _ => Token::Close(line),
                })
            }
            b'"' | b'\'' => {
                let Ok((rest, body)) = quoted(first)(self.rest) else {
                    // The body stops only at the closing quote or at the end of
                    // the input, so a missing quote means the file ended inside it.
                    self.advance(&[], self.rest);
                    return Err(self.eof_error());
                };
                let consumed = self
                    .rest
                    .get(..self.rest.len() - rest.len())
                    .unwrap_or_default();
                self.advance(rest, consumed);
                // nginx wants a separator right after a closing quote, or the
                // `)` that ends an `if` condition (`if ($m = 'GET')`), which
                // then starts a word of its own.
                if let Some(&next) = self.rest.first() {
                    if !is_space(next) && !matches!(next, b';' | b'{' | b'}' | b')') {
                        return Err(ConfigError::new(
                            format!("unexpected \"{}\"", show_byte(next)),
                            &self.span(self.line),
                        ));
                    }
                }
                self.word(body, true, line)
            }
            _ => match bare_word(self.rest) {
                Ok((rest, raw)) => {
                    self.advance(rest, raw);
                    if self.rest.first() == Some(&b'\\') {
                        // A backslash as the very last byte: nginx hits the end
                        // of the file while waiting for the escaped byte.
                        self.advance(&[], self.rest);
                        return Err(self.eof_error());
                    }
                    self.word(raw, false, line)
                }
                Err(_) => {
                    // Only a lone trailing backslash fails to start a word.
                    self.advance(&[], self.rest);
                    Err(self.eof_error())
                }
            },
        }
    }

    fn word(&self, raw: &[u8], quoted: bool, line: u32) -> Result<Token, ConfigError> {
        let bytes = unescape(raw);
        match String::from_utf8(bytes) {
            Ok(value) => Ok(Token::Word(Arg {
                value,
                quoted,
                span: self.span(line),
            })),
            Err(e) => Err(ConfigError::new(
                format!(
                    "invalid UTF-8 in parameter \"{}\"",
                    show_bytes(e.as_bytes())
                ),
                &self.span(line),
            )),
        }
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whitespace and `#` comments between tokens.
fn blank(input: &[u8]) -> IResult<&[u8], usize> {
    many0_count(alt((
        take_while1(is_space),
        preceded(tag("#"), take_till(|b| b == b'\n')),
    )))(input)
}

/// A backslash and the byte it protects.
fn escape_pair(input: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize(pair(tag("\\"), take(1usize)))(input)
}

/// `"..."` or `'...'`: returns the raw body (escapes not yet processed).
fn quoted(q: u8) -> impl Fn(&[u8]) -> IResult<&[u8], &[u8]> {
    move |input| {
        let quote = [q];
        let (input, _) = tag(&quote[..])(input)?;
        let (input, body) = recognize(many0_count(alt((
            take_while1(|b| b != q && b != b'\\'),
            escape_pair,
        ))))(input)?;
        let (input, _) = tag(&quote[..])(input)?;
        Ok((input, body))
    }
}

/// Bytes that can appear in a bare word without special handling.
fn is_plain(b: u8) -> bool {
    !is_space(b) && !matches!(b, b';' | b'{' | b'}' | b'\\' | b'$')
}

/// `$name`, `${name}`, or a lone `$`. Inside `${...}` a `}` belongs to the word.
fn variable(input: &[u8]) -> IResult<&[u8], &[u8]> {
    alt((
        recognize(tuple((
            tag("${"),
            take_while(|b| !is_space(b) && !matches!(b, b';' | b'{' | b'}' | b'\\')),
            opt(tag("}")),
        ))),
        tag("$"),
    ))(input)
}

/// A bare word (raw, escapes not yet processed). Never empty.
fn bare_word(input: &[u8]) -> IResult<&[u8], &[u8]> {
    recognize(many1_count(alt((
        take_while1(is_plain),
        escape_pair,
        variable,
    ))))(input)
}

/// nginx's escape processing: `\" \' \\` give the quoted byte, `\t \r \n` the control
/// byte; any other backslash is kept with the byte after it.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied().peekable();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match bytes.peek().copied() {
            Some(c @ (b'"' | b'\'' | b'\\')) => {
                out.push(c);
                bytes.next();
            }
            Some(b't') => {
                out.push(b'\t');
                bytes.next();
            }
            Some(b'r') => {
                out.push(b'\r');
                bytes.next();
            }
            Some(b'n') => {
                out.push(b'\n');
                bytes.next();
            }
            _ => out.push(b),
        }
    }
    out
}

/// One byte for a message: printable ASCII as is, anything else as `\xNN`.
fn show_byte(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' {
        char::from(b).to_string()
    } else {
        format!("\\x{b:02X}")
    }
}

/// Bytes for a message: valid UTF-8 runs as text, other bytes as `\xNN`.
fn show_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for &b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Writes `tree` back as nginx syntax, four spaces per level. Parsing the result
/// gives the same tree apart from spans: same names, values and `quoted` flags.
pub fn dump(tree: &[Directive]) -> String {
    let mut out = String::new();
    dump_into(&mut out, tree, 0);
    out
}

fn dump_into(out: &mut String, tree: &[Directive], depth: usize) {
    for directive in tree {
        push_indent(out, depth);
        push_word(out, &directive.name, false);
        for arg in &directive.args {
            out.push(' ');
            push_word(out, &arg.value, arg.quoted);
        }
        match &directive.block {
            None => out.push_str(";\n"),
            Some(block) => {
                out.push_str(" {\n");
                dump_into(out, block, depth + 1);
                push_indent(out, depth);
                out.push_str("}\n");
            }
        }
    }
}

fn push_indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("    ");
    }
}

/// Writes one word: bare when it was bare and can be written so, else quoted.
fn push_word(out: &mut String, value: &str, quoted: bool) {
    if !quoted {
        if reads_back_bare(value, value) {
            out.push_str(value);
            return;
        }
        let escaped = bare_escaped(value);
        if reads_back_bare(&escaped, value) {
            out.push_str(&escaped);
            return;
        }
    }
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out.push('"');
}

/// The inverse of [`unescape`] for a bare word: a backslash before a separator is
/// written as the escape pair it came from (`\;`), any other as `\\`, control
/// bytes and quotes escaped. [`reads_back_bare`] checks the result.
fn bare_escaped(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // `\;` and friends can only have come from a kept escape pair; any
            // other backslash is written escaped (`\$` must not hide a variable).
            '\\' => match chars.peek().copied() {
                Some(next @ (' ' | ';' | '{' | '}' | '\n' | '\r' | '\t')) => {
                    out.push('\\');
                    out.push(next);
                    chars.next();
                }
                _ => out.push_str("\\\\"),
            },
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether `raw` is read back as exactly one bare word whose value is `value`.
fn reads_back_bare(raw: &str, value: &str) -> bool {
    let bytes = raw.as_bytes();
    match bytes.first() {
        None | Some(b'"' | b'\'' | b'#') => false,
        Some(_) => match bare_word(bytes) {
            Ok((rest, word)) => rest.is_empty() && unescape(word) == value.as_bytes(),
            Err(_) => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file() -> Arc<PathBuf> {
        Arc::new(PathBuf::from("/etc/proxy/t.conf"))
    }

    fn parse_str(src: &str) -> Result<Vec<Directive>, ConfigError> {
        parse(src.as_bytes(), file())
    }

    /// A compact view of a tree: `name(arg,arg){...}` with `"` around quoted args.
    fn shape(tree: &[Directive]) -> String {
        let mut out = String::new();
        for (i, d) in tree.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(&d.name);
            out.push('(');
            let args: Vec<String> = d
                .args
                .iter()
                .map(|a| {
                    if a.quoted {
                        format!("\"{}\"", a.value)
                    } else {
                        a.value.clone()
                    }
                })
                .collect();
            out.push_str(&args.join(","));
            out.push(')');
            if let Some(block) = &d.block {
                out.push('{');
                out.push_str(&shape(block));
                out.push('}');
            }
        }
        out
    }

    /// Names and args with their lines: `name@L arg@L ...;` per directive.
    fn lines(tree: &[Directive]) -> Vec<String> {
        let mut out = Vec::new();
        for d in tree {
            let mut s = format!("{}@{}", d.name, d.span.line);
            for a in &d.args {
                s.push_str(&format!(" {}@{}", a.value.escape_debug(), a.span.line));
            }
            out.push(s);
            if let Some(block) = &d.block {
                out.extend(lines(block));
            }
        }
        out
    }

    #[test]
    fn accepted_syntax_gives_the_expected_tree() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("   \n\t# only a comment\n", ""),
            ("a;", "a()"),
            ("a b c;", "a(b,c)"),
            ("a b;c d;", "a(b) c(d)"),
            ("a{}", "a(){}"),
            (
                "http { server { listen 80; } }",
                "http(){server(){listen(80)}}",
            ),
            ("a b{c;}d;", "a(b){c()} d()"),
            // Comments: whole line, after a directive, `#` inside a word is text.
            ("# c\na b; # trailing\nc;", "a(b) c()"),
            ("a b#c;", "a(b#c)"),
            ("a \"b # not a comment\";", "a(\"b # not a comment\")"),
            // Quotes, both kinds, empty, with separators inside.
            ("a \"b c\" 'd;e' \"\" '';", "a(\"b c\",\"d;e\",\"\",\"\")"),
            ("a \"{}\";", "a(\"{}\")"),
            ("\"quoted name\" x;", "quoted name(x)"),
            ("a \"x\"{b;}", "a(\"x\"){b()}"),
            // Escapes.
            (r#"a "q\"q" 'q\'q' "b\\s";"#, r#"a("q"q","q'q","b\s")"#),
            (r#"a "x\ty\nz";"#, "a(\"x\ty\nz\")"),
            (r#"a "\d+\.php$";"#, r#"a("\d+\.php$")"#),
            (r"location ~ \.php$ {}", r"location(~,\.php$){}"),
            (r"a b\ c;", r"a(b\ c)"),
            (r"a b\;c;", r"a(b\;c)"),
            (r#"a b\"c;"#, r#"a(b"c)"#),
            ("a b\"c d\";", "a(b\"c,d\")"),
            // Variables.
            ("a $host$request_uri;", "a($host$request_uri)"),
            ("a ${host}x;", "a(${host}x)"),
            ("a x${var}y;", "a(x${var}y)"),
            ("a \"${a} $b\";", "a(\"${a} $b\")"),
            ("a $;", "a($)"),
            // `}` ends a bare word.
            ("s { return 200 ok;}", "s(){return(200,ok)}"),
            ("a\r\nb;\r\n", "a(b)"),
        ];
        for (src, want) in cases {
            let tree = parse_str(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
            assert_eq!(shape(&tree), *want, "source {src:?}");
        }
    }

    #[test]
    fn every_token_carries_its_line() {
        let src =
            "a b\n  c;\n# comment\nblock {\n  x \"multi\nline\" y;\n\n  z 'q'\n  ;\n}\nlast;\n";
        let tree = parse_str(src).expect("parses");
        assert_eq!(
            lines(&tree),
            vec![
                "a@1 b@1 c@2",
                "block@4",
                "x@5 multi\\nline@5 y@6",
                "z@8 q@8",
                "last@11",
            ]
        );
        assert!(tree
            .iter()
            .all(|d| d.span.file.as_path() == std::path::Path::new("/etc/proxy/t.conf")));
    }

    #[test]
    fn syntax_errors_have_nginx_messages_and_lines() {
        let cases: &[(&[u8], &str, u32)] = &[
            (b"}", "unexpected \"}\"", 1),
            (b"a;\n}", "unexpected \"}\"", 2),
            (b"a {\n b c }\n", "unexpected \"}\"", 2),
            (b"a {}\n}", "unexpected \"}\"", 2),
            (b";", "unexpected \";\"", 1),
            (b"a;\n  ;", "unexpected \";\"", 2),
            (b"{}", "unexpected \"{\"", 1),
            (b"a {\n {", "unexpected \"{\"", 2),
            (
                b"a b",
                "unexpected end of file, expecting \";\" or \"}\"",
                1,
            ),
            (
                b"a b\n",
                "unexpected end of file, expecting \";\" or \"}\"",
                2,
            ),
            (
                b"http {\n a;\n",
                "unexpected end of file, expecting \"}\"",
                3,
            ),
            (
                b"http {\n server {\n}",
                "unexpected end of file, expecting \"}\"",
                3,
            ),
            (
                b"a \"b;\n\n",
                "unexpected end of file, expecting \";\" or \"}\"",
                3,
            ),
            (
                b"a 'b\\';",
                "unexpected end of file, expecting \";\" or \"}\"",
                1,
            ),
            (
                b"a b\\",
                "unexpected end of file, expecting \";\" or \"}\"",
                1,
            ),
            (
                b"a \\",
                "unexpected end of file, expecting \";\" or \"}\"",
                1,
            ),
            (b"a \"b\"c;", "unexpected \"c\"", 1),
            (b"a\n'b'\"c\";", "unexpected \"\"\"", 2),
            (b"a \"b\"#c\n;", "unexpected \"#\"", 1),
            (b"a \"b\"\x01;", "unexpected \"\\x01\"", 1),
            (b"a\nb \xff;", "invalid UTF-8 in parameter \"\\xFF\"", 2),
            (
                b"a \"caf\xe9\";",
                "invalid UTF-8 in parameter \"caf\\xE9\"",
                1,
            ),
        ];
        for (src, message, line) in cases {
            let err = parse(src, file()).expect_err("must fail");
            assert_eq!(
                err.message,
                *message,
                "source {:?}",
                String::from_utf8_lossy(src)
            );
            assert_eq!(
                err.span.map(|s| s.line),
                Some(*line),
                "source {:?}",
                String::from_utf8_lossy(src)
            );
        }
    }

    #[test]
    fn non_utf8_bytes_in_comments_are_ignored() {
        let tree = parse(b"# caf\xe9\na b;", file()).expect("parses");
        assert_eq!(shape(&tree), "a(b)");
    }

    #[test]
    fn error_display_names_file_and_line() {
        let err = parse_str("a {\n}\n}").expect_err("stray brace");
        assert_eq!(err.to_string(), "unexpected \"}\" in /etc/proxy/t.conf:3");
    }

    #[test]
    fn nesting_is_capped_without_recursion() {
        let ok = "a{".repeat(MAX_DEPTH) + &"}".repeat(MAX_DEPTH);
        assert!(parse_str(&ok).is_ok());
        let deep = "a{".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
        let err = parse_str(&deep).expect_err("too deep");
        assert_eq!(
            err.message,
            format!("too deeply nested blocks (more than {MAX_DEPTH} levels)")
        );
        let hostile = "{".repeat(1_000_000);
        assert_eq!(
            parse_str(&hostile).expect_err("hostile").message,
            "unexpected \"{\""
        );
        let hostile = "a{".repeat(1_000_000);
        assert!(parse_str(&hostile).is_err());
        let err = parse_at_depth(b"a{}", file(), MAX_DEPTH).expect_err("deep include");
        assert!(err.message.starts_with("too deeply nested"));
    }

    #[test]
    fn dump_round_trips_modulo_spans() {
        let sources = [
            "a b c;\nhttp { server { listen 80; location / { return 200 \"ok\\n\"; } } }",
            r#"log_format main '$remote_addr - "$request" $status' "x\ty";"#,
            r"location ~ \.php$ { a b\;c d\ e 'it\'s' ${x}y; }",
            "a \"\" '' \"#x\" \"{\" \"}\" \";\" \"a b\" \"\\\\\" \"q\\\"\";",
            "e {}\nf { g { h; } }",
            "a \"line\none\" \"caf\u{e9}\" b\\\"c;",
        ];
        for src in sources {
            let tree = parse_str(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
            let text = dump(&tree);
            let again = parse_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(shape(&again), shape(&tree), "dump was {text:?}");
        }
    }

    #[test]
    fn dump_writes_nginx_syntax() {
        let tree = parse_str("http{server{listen 80;}}a 'b c' d;").expect("parses");
        assert_eq!(
            dump(&tree),
            "http {\n    server {\n        listen 80;\n    }\n}\na \"b c\" d;\n"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep over short inputs made of the special bytes.
        let alphabet: &[u8] = b"n {};\"'\\#$\t\xff";
        let n = alphabet.len();
        for len in 1..=5u32 {
            for mut k in 0..n.pow(len) {
                let mut input = Vec::new();
                for _ in 0..len {
                    input.push(alphabet[k % n]);
                    k /= n;
                }
                if let Ok(tree) = parse(&input, file()) {
                    let text = dump(&tree);
                    let again = parse(text.as_bytes(), file()).expect("dump parses");
                    assert_eq!(shape(&again), shape(&tree), "input {input:?}");
                }
            }
        }
    }

    /// Found by the config_parse fuzzer: a bare `\\\${var` came back quoted
    /// because the dump wrote the last backslash as the pair `\$`, hiding the
    /// variable.
    #[test]
    fn regression_escaped_backslash_before_variable_stays_bare() {
        let input: &[u8] = b"incl\x5c\x5c\x5c\x5c\x5cT\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5cJ\x5c\x5c\x5c'leinclu*\x00lnhcuzle \x5cT\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c'leinclule \x5c' q\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c'leinclule \x5c' q' b\x5c;c$e\x22a;e clule \x5c' q' b\x5c;c$e\x22\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14 \x5c' q\x14\x14\x14\x14\x14/\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x5c\x5c\x5c\x5c\x5c\x5c${var\x00\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00  ${var\x0d\x00\x5c;c \x5c\x5c\x5c'leinc\x14a\xcc\x9a\xdf\xa3' q' b\x5c;c$e\x22a' b\x5c;c$e\x22a;e clule \x5c' q' b\x5c;c$e\x22\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x14\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c\x5c'leinc\x14a\xcc\x9a\xdf\xa3' q' riec$e\x22a;f;\x0a";
        let tree = parse(input, file()).expect("parses");
        let again = parse(dump(&tree).as_bytes(), file()).expect("dump parses");
        assert_eq!(shape(&again), shape(&tree));
        let tree = parse_str(r"a \\${x} \\$y \$z;").expect("parses");
        assert_eq!(dump(&tree), "a \\\\${x} \\$y \\$z;\n");
        let again = parse(dump(&tree).as_bytes(), file()).expect("dump parses");
        assert_eq!(shape(&again), shape(&tree));
    }
}
