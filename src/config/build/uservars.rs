//! The variables a configuration defines (`set $x`, the named groups of its
//! regexes, and later `map` and `split_clients`), found in one pass over the
//! whole tree before anything is built, because nginx lets a variable be used
//! before (in file order) the directive that defines it.
//!
//! While one `build` runs, the names are in scope for [`super::args::template_arg`]
//! (a thread-local set by a guard for the duration of the build only): that keeps
//! the many `template_arg(d, value)` call sites as they are.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use crate::config::ast::Directive;
use crate::config::map::ComputedRef;
use crate::config::Variable;

thread_local! {
    static NAMES: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// The `map` / `split_clients` variables, filled when their block is built.
    static COMPUTED: RefCell<Vec<ComputedRef>> = const { RefCell::new(Vec::new()) };
}

/// The names in scope while it lives (see the module docs).
pub(super) struct Scope;

impl Scope {
    /// Collects the names defined anywhere in `tree` and puts them in scope.
    pub(super) fn enter(tree: &[Directive]) -> Scope {
        let mut names = Vec::new();
        let mut computed = Vec::new();
        collect(tree, &mut names, &mut computed);
        let computed = computed
            .into_iter()
            .map(|name: String| ComputedRef {
                name: name.into(),
                slot: Arc::new(OnceLock::new()),
            })
            .collect();
        NAMES.with(|n| *n.borrow_mut() = names);
        COMPUTED.with(|c| *c.borrow_mut() = computed);
        Scope
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        NAMES.with(|n| n.borrow_mut().clear());
        COMPUTED.with(|c| c.borrow_mut().clear());
    }
}

/// The user variable `name` (without `$`, any case), if the configuration
/// defines it.
pub(super) fn lookup(name: &str) -> Option<Variable> {
    computed(name)
        .map(Variable::Computed)
        .or_else(|| index(name).map(Variable::User))
}

/// The `map` / `split_clients` variable `name` (any case).
pub(super) fn computed(name: &str) -> Option<ComputedRef> {
    COMPUTED.with(|c| {
        c.borrow()
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .cloned()
    })
}

/// Every `map` / `split_clients` variable.
pub(super) fn all_computed() -> Vec<ComputedRef> {
    COMPUTED.with(|c| c.borrow().clone())
}

/// The index of user variable `name` (`set`, named groups); `None` for a
/// built-in, unknown or computed name.
pub(super) fn index(name: &str) -> Option<u16> {
    if computed(name).is_some() {
        return None;
    }
    NAMES.with(|n| {
        n.borrow()
            .iter()
            .position(|x| x.eq_ignore_ascii_case(name))
            .and_then(|i| u16::try_from(i).ok())
    })
}

fn add(names: &mut Vec<String>, name: &str) {
    let name = name.strip_prefix('$').unwrap_or(name);
    if name.is_empty() || crate::config::template::variable(name).is_some() {
        return;
    }
    if !names.iter().any(|x| x.eq_ignore_ascii_case(name)) {
        names.push(name.to_ascii_lowercase());
    }
}

/// The names of the named groups of regex source `re` (`(?<x>`, `(?P<x>`).
pub(super) fn group_names(re: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = re;
    while let Some(i) = rest.find("(?") {
        rest = &rest[i + 2..];
        let after = rest.strip_prefix('P').unwrap_or(rest);
        if let Some(body) = after.strip_prefix('<') {
            let end = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            if body[end..].starts_with('>') && end > 0 {
                out.push(&body[..end]);
            }
        }
    }
    out
}

fn collect(tree: &[Directive], names: &mut Vec<String>, computed: &mut Vec<String>) {
    for d in tree {
        let args: Vec<&str> = d.args.iter().map(|a| a.value.as_str()).collect();
        match (d.name.as_str(), args.as_slice()) {
            ("set" | "auth_request_set", [var, ..]) => add(names, var),
            ("map" | "split_clients", [_, var, ..]) => {
                // Inside the block are keys, not directives: only the named
                // groups of regex keys define variables.
                add(computed, var);
                for key in d.block.iter().flatten() {
                    if let Some(re) = key.name.strip_prefix('~') {
                        group_names(re).into_iter().for_each(|n| add(names, n));
                    }
                }
                continue;
            }
            ("geo", [.., var]) => {
                add(computed, var);
                continue;
            }
            ("rewrite", [re, ..]) => group_names(re).into_iter().for_each(|n| add(names, n)),
            ("location", [_, re]) => group_names(re).into_iter().for_each(|n| add(names, n)),
            ("server_name", list) => list
                .iter()
                .filter_map(|a| a.strip_prefix('~'))
                .flat_map(|re| group_names(re))
                .for_each(|n| add(names, n)),
            ("if", list) => list
                .iter()
                .flat_map(|re| group_names(re))
                .for_each(|n| add(names, n)),
            _ => {}
        }
        if let Some(block) = &d.block {
            collect(block, names, computed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_table() {
        let cases: [(&str, &[&str]); 5] = [
            ("^/(?<id>\\d+)/(?P<rest>.*)$", &["id", "rest"]),
            ("^/(\\d+)$", &[]),
            ("(?i)x", &[]),
            ("(?<>x)", &[]),
            ("(?<a-b>x)", &[]),
        ];
        for (re, want) in cases {
            assert_eq!(group_names(re), want, "{re}");
        }
    }
}
