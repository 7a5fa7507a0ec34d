// SPDX-License-Identifier: MPL-2.0

//! The shape of the source tree, as the layout section of the developers'
//! guide promises it: every source file carries its licence, no file of
//! the plugin or the worker grows past 700 lines (the element's glue past
//! 600), and src/ itself holds only a few files, the parts being folders.

use std::path::{Path, PathBuf};

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every file under `dir` (recursively) whose name ends in one of `endings`.
fn files(dir: &Path, endings: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(
                name.as_str(),
                "node_modules" | "target" | ".git" | "corpus" | "artifacts"
            ) {
                found.extend(files(&path, endings));
            }
        } else if endings.iter().any(|e| name.ends_with(e)) {
            found.push(path);
        }
    }
    found
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .count()
}

#[test]
fn every_source_file_carries_its_spdx_licence() {
    let dirs = [
        "src",
        "worker",
        "tests",
        "examples",
        "fuzz",
        "scripts",
        "pipelines",
        "deploy",
    ];
    let sources: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|d| files(&repository().join(d), &[".rs", ".sh", ".py", ".mjs", ".js"]))
        .chain([repository().join("build.rs")])
        .collect();
    assert!(sources.len() > 100, "{} source files found", sources.len());
    let without: Vec<_> = sources
        .iter()
        .filter(|path| {
            let head: String = std::fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .take(3)
                .collect();
            !head.contains("SPDX-License-Identifier: MPL-2.0")
        })
        .collect();
    assert!(without.is_empty(), "without an SPDX line: {without:?}");
}

#[test]
fn no_file_of_the_plugin_or_the_worker_is_over_700_lines() {
    let sources: Vec<PathBuf> = ["src", "worker/src"]
        .iter()
        .flat_map(|d| files(&repository().join(d), &[".rs"]))
        .collect();
    let long: Vec<_> = sources
        .iter()
        .map(|path| (path, lines(path)))
        .filter(|(_, count)| *count > 700)
        .collect();
    assert!(long.is_empty(), "over 700 lines: {long:?}");
    let glue = lines(&repository().join("src/element/imp.rs"));
    assert!(glue <= 600, "the element's imp.rs has {glue} lines");
}

#[test]
fn src_holds_folders_and_at_most_eight_files() {
    let top: Vec<_> = std::fs::read_dir(repository().join("src"))
        .expect("src")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.file_name())
        .collect();
    assert!(top.len() <= 8, "{top:?}");
}

/// The module path of a file under src/: `src/a/b.rs` and `src/a/b/mod.rs`
/// are `["a", "b"]`, `src/lib.rs` is `[]`.
fn module_of(path: &Path) -> Vec<String> {
    let relative = path
        .strip_prefix(repository().join("src"))
        .expect("under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The file that holds module `path`, if one does.
fn file_of(path: &[String]) -> Option<PathBuf> {
    let base = repository().join("src");
    if path.is_empty() {
        return Some(base.join("lib.rs"));
    }
    let joined: PathBuf = path.iter().collect();
    [
        base.join(&joined).with_extension("rs"),
        base.join(&joined).join("mod.rs"),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

/// The files `path` takes names from: each `crate::`/`super::` path in it
/// (unit-test modules left out), resolved to the deepest module that is a
/// file of its own.
fn imports_of(path: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(path).expect("source");
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let here = module_of(path);
    let mut found = Vec::new();
    for start in ["crate::", "super::"] {
        for (at, _) in code.match_indices(start) {
            let preceded = code[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if preceded {
                continue;
            }
            let tail: String = code[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let mut segments: Vec<&str> = tail.split("::").filter(|s| !s.is_empty()).collect();
            let mut module: Vec<String> = if segments.first() == Some(&"crate") {
                segments.remove(0);
                Vec::new()
            } else {
                // `super` of `a/b.rs` (module a::b) and of `a/b/mod.rs`
                // (module a::b too) is module a.
                let mut base = here.clone();
                while segments.first() == Some(&"super") {
                    segments.remove(0);
                    base.pop();
                }
                base
            };
            let mut target = file_of(&module);
            for segment in segments {
                module.push(segment.to_owned());
                match file_of(&module) {
                    Some(file) => target = Some(file),
                    None => break,
                }
            }
            if let Some(target) = target.filter(|t| t != path) {
                found.push(target);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn no_file_of_the_plugin_imports_one_that_imports_it_back() {
    let sources = files(&repository().join("src"), &[".rs"]);
    let graph: Vec<(PathBuf, Vec<PathBuf>)> =
        sources.iter().map(|p| (p.clone(), imports_of(p))).collect();
    let edges = |from: &Path| {
        graph
            .iter()
            .find(|(p, _)| p == from)
            .map(|(_, to)| to.clone())
            .unwrap_or_default()
    };
    // A depth-first walk from every file; a file met again on the way is a cycle.
    fn walk(
        at: &Path,
        trail: &mut Vec<PathBuf>,
        done: &mut Vec<PathBuf>,
        edges: &dyn Fn(&Path) -> Vec<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(first) = trail.iter().position(|p| p == at) {
            return Some(trail[first..].to_vec());
        }
        if done.iter().any(|p| p == at) {
            return None;
        }
        trail.push(at.to_path_buf());
        for next in edges(at) {
            if let Some(cycle) = walk(&next, trail, done, edges) {
                return Some(cycle);
            }
        }
        trail.pop();
        done.push(at.to_path_buf());
        None
    }
    let edge_count: usize = graph.iter().map(|(_, to)| to.len()).sum();
    assert!(edge_count > 100, "{edge_count} imports resolved to files");
    let mut done = Vec::new();
    for (file, _) in &graph {
        let cycle = walk(file, &mut Vec::new(), &mut done, &edges);
        assert!(cycle.is_none(), "import cycle: {cycle:?}");
    }
    // And nothing below the element imports it.
    let element = repository().join("src/element");
    for (file, to) in &graph {
        if !file.starts_with(&element) && !file.ends_with("lib.rs") {
            assert!(
                to.iter().all(|t| !t.starts_with(&element)),
                "{} imports the element",
                file.display()
            );
        }
    }
}
