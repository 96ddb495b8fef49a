//! Running the statements of nginx's rewrite module (`rewrite`, `set`, `if`,
//! `break`, `return`) of one block, in order, against one request: the URI,
//! the user variables and the regex captures change in its
//! [`UserVars`]; the outcome says what the planner does next. Pure but for the
//! file tests of `if (-f ...)`, which read the file system's metadata.

use std::borrow::Cow;

use crate::config::rewrite::{Condition, FileTest, Op, RewriteFlag};
use crate::config::{LocationConf, Return, Template};
use crate::user_vars::UserVars;

/// What the planner does after a script.
#[derive(Debug)]
pub enum Flow<'c> {
    /// The script ended (or `break`): carry on. `rematch`: a `rewrite` without
    /// a flag changed the URI, so a location block matches again (nginx's
    /// `uri_changed`).
    Done { rematch: bool },
    /// `rewrite ... last`: match the locations again with the new URI.
    Last,
    /// `return`.
    Return(&'c Return),
    /// A rewrite to a redirect: status and `Location`.
    Redirect { code: u16, url: Vec<u8> },
}

/// The result of [`run`]: the flow, and the settings of the last `if` block
/// entered (they replace the location's for the rest of the request).
#[derive(Debug)]
pub struct Ran<'c> {
    pub flow: Flow<'c>,
    pub conf: Option<&'c LocationConf>,
}

/// Evaluates a template for the request, with its user variables now.
pub type Eval<'e> = dyn Fn(&Template, &UserVars) -> Vec<u8> + 'e;

enum Step<'c> {
    Next,
    Stop(Flow<'c>),
}

/// Runs `ops` for a request whose URI is `vars.uri` (set from the request's
/// own `path`/`args` here when a rewrite changes it first). `log`: nginx's
/// `rewrite_log` lines at notice level.
pub fn run<'c>(
    ops: &'c [Op],
    vars: &mut UserVars,
    path: &[u8],
    args: Option<&str>,
    eval: &Eval<'_>,
    log: bool,
) -> Ran<'c> {
    let mut ran = Ran {
        flow: Flow::Done { rematch: false },
        conf: None,
    };
    let mut rematch = false;
    let step = block(
        ops,
        vars,
        path,
        args,
        eval,
        log,
        &mut ran.conf,
        &mut rematch,
    );
    ran.flow = match step {
        Step::Next => Flow::Done { rematch },
        Step::Stop(flow) => flow,
    };
    ran
}

#[allow(clippy::too_many_arguments)]
fn block<'c>(
    ops: &'c [Op],
    vars: &mut UserVars,
    path: &[u8],
    args: Option<&str>,
    eval: &Eval<'_>,
    log: bool,
    conf: &mut Option<&'c LocationConf>,
    rematch: &mut bool,
) -> Step<'c> {
    for op in ops {
        match op {
            Op::Set { var, value } => {
                let v = eval(value, vars);
                vars.set(*var, v);
            }
            Op::Break => return Step::Stop(Flow::Done { rematch: false }),
            Op::Return(ret) => return Step::Stop(Flow::Return(ret)),
            Op::If {
                cond,
                body,
                conf: if_conf,
            } => {
                if condition(cond, vars, eval) {
                    if let Some(c) = if_conf {
                        *conf = Some(c);
                    }
                    if let Step::Stop(flow) =
                        block(body, vars, path, args, eval, log, conf, rematch)
                    {
                        return Step::Stop(flow);
                    }
                }
            }
            Op::Rewrite {
                re,
                replacement,
                flag,
                keep_args,
            } => {
                let (now_path, now_args) = current(vars, path, args);
                let subject = String::from_utf8_lossy(now_path).into_owned();
                let now_args = now_args.map(str::to_string);
                let Some(caps) = re.re.captures(&subject) else {
                    if log {
                        tracing::info!("\"{}\" does not match \"{subject}\"", re.re.as_str());
                    }
                    continue;
                };
                vars.matched(&subject, &caps, &re.named);
                drop(caps);
                let value = eval(replacement, vars);
                if log {
                    tracing::info!(
                        "\"{}\" matches \"{subject}\", rewritten to \"{}\"",
                        re.re.as_str(),
                        String::from_utf8_lossy(&value)
                    );
                }
                let (new_path, new_args) = split_args(&value, now_args.as_deref(), *keep_args);
                if is_redirect(replacement)
                    || matches!(flag, RewriteFlag::Redirect | RewriteFlag::Permanent)
                {
                    let code = if *flag == RewriteFlag::Permanent {
                        301
                    } else {
                        302
                    };
                    let mut url = new_path.into_owned();
                    if let Some(a) = new_args.filter(|a| !a.is_empty()) {
                        url.push(b'?');
                        url.extend_from_slice(a.as_bytes());
                    }
                    return Step::Stop(Flow::Redirect { code, url });
                }
                vars.uri = Some((new_path.into_owned(), new_args));
                match flag {
                    RewriteFlag::Last => return Step::Stop(Flow::Last),
                    RewriteFlag::Break => return Step::Stop(Flow::Done { rematch: false }),
                    _ => *rematch = true,
                }
            }
        }
    }
    Step::Next
}

/// The URI now: the rewritten one, else the request's.
fn current<'a>(
    vars: &'a UserVars,
    path: &'a [u8],
    args: Option<&'a str>,
) -> (&'a [u8], Option<&'a str>) {
    match &vars.uri {
        Some((p, a)) => (p, a.as_deref()),
        None => (path, args),
    }
}

/// True when a replacement redirects (`http://`, `https://`, `$scheme`).
fn is_redirect(t: &Template) -> bool {
    let s = t.source.as_str();
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("$scheme")
}

/// Splits a rewritten value at `?` into path and arguments; the request's
/// `old` arguments are appended (after `&`) when `keep_args`. A trailing `?`
/// was removed at load time (`keep_args` false).
fn split_args<'v>(
    value: &'v [u8],
    old: Option<&str>,
    keep_args: bool,
) -> (Cow<'v, [u8]>, Option<String>) {
    let (path, new) = match value.iter().position(|&b| b == b'?') {
        Some(i) => (
            value.get(..i).unwrap_or_default(),
            Some(String::from_utf8_lossy(value.get(i + 1..).unwrap_or_default()).into_owned()),
        ),
        None => (value, None),
    };
    let old = old.filter(|a| !a.is_empty() && keep_args);
    let args = match (new, old) {
        (Some(n), Some(o)) if !n.is_empty() => Some(format!("{n}&{o}")),
        (Some(n), None) => Some(n),
        (_, Some(o)) => Some(o.to_string()),
        (None, None) => (!keep_args).then(String::new),
    };
    (Cow::Borrowed(path), args)
}

fn condition(cond: &Condition, vars: &mut UserVars, eval: &Eval<'_>) -> bool {
    match cond {
        Condition::Value(t) => {
            let v = eval(t, vars);
            !(v.is_empty() || v == b"0")
        }
        Condition::Equals {
            value,
            text,
            negate,
        } => (eval(value, vars) == eval(text, vars)) != *negate,
        Condition::Matches { value, re, negate } => {
            let v = eval(value, vars);
            let subject = String::from_utf8_lossy(&v);
            match re.re.captures(&subject) {
                Some(caps) => {
                    if !*negate {
                        vars.matched(&subject, &caps, &re.named);
                    }
                    !*negate
                }
                None => *negate,
            }
        }
        Condition::File { test, path, negate } => {
            let p = eval(path, vars);
            file_test(*test, &String::from_utf8_lossy(&p)) != *negate
        }
    }
}

fn file_test(test: FileTest, path: &str) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    match test {
        FileTest::File => meta.is_file(),
        FileTest::Dir => meta.is_dir(),
        FileTest::Exists => true,
        FileTest::Executable => {
            use std::os::unix::fs::PermissionsExt;
            meta.is_file() && meta.permissions().mode() & 0o111 != 0
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::type_complexity)]
    fn arguments_after_a_rewrite_follow_nginx() {
        // (replacement value, old args, keep_args) -> (path, args)
        let cases: [(&str, Option<&str>, bool, &str, Option<&str>); 6] = [
            ("/new", Some("a=1"), true, "/new", Some("a=1")),
            ("/new", Some("a=1"), false, "/new", Some("")),
            ("/new?b=2", Some("a=1"), true, "/new", Some("b=2&a=1")),
            ("/new?b=2", Some("a=1"), false, "/new", Some("b=2")),
            ("/new?b=2", None, true, "/new", Some("b=2")),
            ("/new", None, true, "/new", None),
        ];
        for (value, old, keep, path, args) in cases {
            let (p, a) = split_args(value.as_bytes(), old, keep);
            assert_eq!(
                (&*p, a.as_deref()),
                (path.as_bytes(), args),
                "{value} {old:?} {keep}"
            );
        }
    }

    #[test]
    fn file_tests_read_metadata() {
        let dir = std::env::temp_dir();
        let d = dir.to_str().unwrap();
        assert!(file_test(FileTest::Dir, d));
        assert!(file_test(FileTest::Exists, d));
        assert!(!file_test(FileTest::File, d));
        assert!(!file_test(FileTest::Exists, "/nonexistent/x/y"));
        assert!(file_test(FileTest::Executable, "/bin/sh"));
    }
}
