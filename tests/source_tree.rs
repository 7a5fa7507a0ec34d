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
