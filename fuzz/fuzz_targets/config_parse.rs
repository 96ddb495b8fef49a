//! Arbitrary bytes through the whole configuration front end: parse, include
//! expansion and the builder. Errors are expected; a panic, hang or runaway
//! allocation is a bug. The notional file lives in a directory that does not exist,
//! so relative includes fail cleanly without touching the file system.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use sticky_proxy::config::{build, include, parse};

fuzz_target!(|data: &[u8]| {
    let file = Path::new("/nonexistent-fuzz/fuzz.conf");
    let Ok(tree) = include::load_str(data, file) else {
        return;
    };
    // What parses must dump to text that parses back to the same tree.
    let text = parse::dump(&tree);
    let again = include::load_str(text.as_bytes(), file).expect("dump output parses");
    assert_eq!(strip(&again), strip(&tree), "dump round trip");
    let _ = build::build(file, &tree);
});

/// The tree without spans: (name, [(value, quoted)], block).
#[derive(Debug, PartialEq)]
struct Bare(String, Vec<(String, bool)>, Option<Vec<Bare>>);

fn strip(tree: &[sticky_proxy::config::ast::Directive]) -> Vec<Bare> {
    tree.iter()
        .map(|d| {
            Bare(
                d.name.clone(),
                d.args.iter().map(|a| (a.value.clone(), a.quoted)).collect(),
                d.block.as_deref().map(strip),
            )
        })
        .collect()
}
