// SPDX-License-Identifier: MPL-2.0

//! The install path users expect: meson builds the plugin with cargo and
//! installs it into the GStreamer plugin directory of its prefix, where
//! gst-inspect-1.0 finds it.

use std::path::Path;
use std::process::Command;

#[test]
fn meson_install_puts_a_plugin_gst_inspect_finds() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = source.join("target/meson-test");
    let _ = std::fs::remove_dir_all(&work);
    let (build, prefix) = (work.join("build"), work.join("prefix"));
    let run = |args: &[&str]| {
        let output = Command::new("meson")
            .args(args)
            .current_dir(source)
            .output()
            .expect("meson runs");
        assert!(
            output.status.success(),
            "meson {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let (build_s, prefix_s) = (build.to_string_lossy(), prefix.to_string_lossy());
    // The debug profile reuses the suite's own build: the path under test
    // is meson's and the install's, not the optimiser's (a release build
    // from scratch took minutes of the suite).
    run(&[
        "setup",
        &build_s,
        &format!("--prefix={prefix_s}"),
        "-Dcargo-profile=debug",
    ]);
    run(&["compile", "-C", &build_s]);
    run(&["install", "-C", &build_s]);
    let plugin = walk(&prefix)
        .into_iter()
        .find(|p| p.ends_with("gstreamer-1.0/libgststsdub.so"));
    let plugin = plugin.expect("libgststsdub.so installed under <prefix>/<libdir>/gstreamer-1.0");
    let output = Command::new("gst-inspect-1.0")
        .arg("stsdub")
        .env("GST_PLUGIN_PATH", plugin.parent().expect("plugin dir"))
        .env("GST_REGISTRY", work.join("registry.bin"))
        .output()
        .expect("gst-inspect-1.0 runs");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("Speech-to-speech dubbing"));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}
