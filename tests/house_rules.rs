//! The house rules that the compiler does not check: `unsafe` lives in
//! `src/sys/` (the one exception: `FromRawFd::from_raw_fd` beside its type),
//! and the layers' arrows point down (sys knows nothing above it; nothing
//! below the reactor knows the reactor or the cluster).

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Source lines of `path` with `//` comments cut off.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).expect("read source");
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let code = match l.find("//") {
                Some(p) => &l[..p],
                None => l,
            };
            (i + 1, code.to_string())
        })
        .collect()
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn unsafe_appears_only_in_sys_or_from_raw_fd() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let sys = src().join("sys");
    let mut offences = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(&sys)) {
        for (n, line) in code_lines(f) {
            if !line
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .any(|w| w == "unsafe")
            {
                continue;
            }
            // The trait's signature only: its body calls `sys::fd::adopt_raw`,
            // so no unsafe block stands outside `sys`.
            let allowed = line.contains("unsafe fn from_raw_fd(");
            if !allowed {
                offences.push(format!("{}:{n}: {}", f.display(), line.trim()));
            }
        }
    }
    assert!(
        offences.is_empty(),
        "unsafe outside src/sys:\n{}",
        offences.join("\n")
    );
    assert!(files.len() > 20, "found only {} source files", files.len());
}

#[test]
fn the_layers_point_down() {
    // (folder or file under src/, modules it must not name)
    let rules: &[(&str, &[&str])] = &[
        (
            "sys",
            &[
                "buffer", "io", "net", "options", "poll", "reactor", "cluster", "timer", "token",
            ],
        ),
        ("poll.rs", &["reactor", "cluster", "net", "options"]),
        ("token.rs", &["reactor", "cluster", "net", "options"]),
        ("timer.rs", &["reactor", "cluster", "net", "options"]),
        ("buffer.rs", &["reactor", "cluster", "net", "options"]),
        ("io.rs", &["reactor", "cluster", "net", "options"]),
        ("net", &["reactor", "cluster"]),
        ("options.rs", &["reactor", "cluster"]),
        ("reactor", &["cluster"]),
        // TLS sits between io and the reactor: the reactor uses it.
        ("tls", &["reactor", "cluster", "net", "options"]),
    ];
    let mut offences = Vec::new();
    for (place, banned) in rules {
        let path = src().join(place);
        let mut files = Vec::new();
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else {
            files.push(path);
        }
        for f in &files {
            for (n, line) in code_lines(f) {
                for b in banned.iter() {
                    if line.contains(&format!("crate::{b}::"))
                        || line.contains(&format!("crate::{b};"))
                    {
                        offences.push(format!("{}:{n}: names crate::{b}", f.display()));
                    }
                }
            }
        }
    }
    assert!(
        offences.is_empty(),
        "arrows pointing up:\n{}",
        offences.join("\n")
    );
}
