//! The gateway's shape: its top-level modules depend on each other one way only (no
//! circles), and submissions are validated in one place.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every `.rs` file under `dir`.
fn files(dir: &Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}

/// The code of a file without its comments (a module named in prose is no dependency).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn top_level_modules_never_depend_on_each_other_in_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for path in &all {
        let relative = path.strip_prefix(&src).unwrap();
        let module = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        if module == "lib" {
            continue;
        }
        let text = code(path);
        // Inside a folder module, its files too: `http::register` → `http::series`.
        if let (Some(dir), Some(file)) = (
            relative.parent().filter(|d| !d.as_os_str().is_empty()),
            relative.file_stem(),
        ) {
            let here = format!("{}::{}", dir.display(), file.to_string_lossy());
            let siblings = graph.entry(here.clone()).or_default();
            for prefix in ["super::", &format!("crate::{}::", dir.display())] {
                for (at, _) in text.match_indices(prefix) {
                    let name: String = text[at + prefix.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    let there = format!("{}::{name}", dir.display());
                    if !name.is_empty() && there != here && file != "mod" {
                        siblings.insert(there);
                    }
                }
            }
        }
        let uses = graph.entry(module.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && name != module {
                uses.insert(name);
            }
        }
    }
    // Depth-first search for a way back to where it started.
    fn reaches(
        graph: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in graph.get(from).into_iter().flatten() {
            if next == to {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if reaches(graph, next, to, seen, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    for module in graph.keys() {
        let mut path = vec![module.clone()];
        assert!(
            !reaches(&graph, module, module, &mut BTreeSet::new(), &mut path),
            "a circle: {}",
            path.join(" → ")
        );
    }
    assert!(
        graph["http"].contains("intake"),
        "the scan sees dependencies: {graph:?}"
    );
}

#[test]
fn submissions_are_validated_in_one_place() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let validators: Vec<String> = all
        .iter()
        .filter(|p| code(p).contains("fn validate("))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(validators.len(), 1, "{validators:?}");
    assert!(validators[0].ends_with("intake/mod.rs"), "{validators:?}");
}
