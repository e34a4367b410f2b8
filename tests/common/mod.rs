//! Helpers shared by the figure structure tests: temporary output directories, SVG
//! well-formedness and PNG size checks.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fresh temporary directory for one test (`prefix` keeps test binaries apart).
pub fn out_dir_with(prefix: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("modeflow-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Minimal well-formedness check: one root `<svg>` element, every tag closed in order.
pub fn check_svg(text: &str) {
    assert!(text.starts_with("<svg"), "SVG must start with <svg");
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text;
    let mut roots = 0;
    while let Some(i) = rest.find('<') {
        let j = rest[i..].find('>').expect("unterminated tag") + i;
        let tag = &rest[i + 1..j];
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        if tag.starts_with('?') || tag.starts_with('!') {
        } else if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "unbalanced </{name}>"
            );
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().unwrap().to_string();
            if stack.is_empty() {
                roots += 1;
            }
            stack.push(name);
        } else if stack.is_empty() {
            roots += 1;
        }
        rest = &rest[j + 1..];
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
    // text content must not hold raw '<' or '&' other than entities: checked by the split above
}

/// The PNG's size from its IHDR chunk, after checking the signature; also decodes it.
pub fn check_png(path: &Path, size: (u32, u32)) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(&b[12..16], b"IHDR");
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    assert_eq!((w, h), size);
    let img = image::load_from_memory(&b).unwrap();
    assert_eq!((img.width(), img.height()), size);
}

/// The figure `stem` written into `dir`: its SVG well-formed, its PNG decoding to `size`, its
/// JSON carrying this version, and no temporary file left in `dir`. Returns the SVG text and
/// the parsed JSON.
pub fn check_figure_files(dir: &Path, stem: &str, size: (u32, u32)) -> (String, serde_json::Value) {
    let svg = std::fs::read_to_string(dir.join(format!("{stem}.svg"))).unwrap();
    check_svg(&svg);
    check_png(&dir.join(format!("{stem}.png")), size);
    let json = std::fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["modeflow_version"], env!("CARGO_PKG_VERSION"));
    // no temporary files left behind
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "temporary file left: {name}");
    }
    (svg, v)
}
