//! The book (`docs/`, mdBook) stays true to the code:
//!
//! - the generated reference pages are what `shopify-operator docs` writes
//!   now (as `crds/` is checked against the CRD types);
//! - every internal link and anchor resolves, every page is in
//!   `SUMMARY.md`, and a link to a repository file names one that exists;
//! - every YAML example with an `apiVersion` passes `kubectl apply
//!   --dry-run=server` against the test apiserver (with our CRDs), and every
//!   other YAML example parses;
//! - every shell example names only `make` targets, `shopify-operator`
//!   subcommands and flags, and chart values that exist;
//! - mdbook builds the book (`MDBOOK_BIN`, else `hack/mdbook.sh`).
//!
//! The README's links are checked too, and its length (the book holds the
//! rest).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};

/// Links to files of this repository are written as URLs (the built book
/// has no copy of them); the test checks the path after this prefix.
const REPO_BLOB: &str = "https://github.com/shopify-operator/shopify-operator/blob/main/";

/// The README is the front door only.
const README_MAX_LINES: usize = 250;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn book_src() -> PathBuf {
    root().join("docs/src")
}

/// Every Markdown file of the book, relative to `docs/src`.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.path());
        for e in entries {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p.strip_prefix(base).expect("under base").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(&book_src(), &book_src(), &mut out);
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// What the checks need from one Markdown file.
#[derive(Default)]
struct Parsed {
    links: Vec<String>,
    /// Heading ids as mdBook makes them.
    anchors: BTreeSet<String>,
    /// Fenced code blocks: (info string, text).
    code: Vec<(String, String)>,
}

/// mdBook's heading id: the heading's text lower-cased, whitespace as `-`,
/// only alphanumerics, `-` and `_` kept; a repeated id gets `-1`, `-2`…
fn heading_id(text: &str, seen: &mut BTreeMap<String, usize>) -> String {
    let base: String = text
        .trim()
        .chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some('-')
            } else if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_lowercase().next().unwrap_or(c))
            } else {
                None
            }
        })
        .collect();
    let n = seen.entry(base.clone()).or_insert(0);
    let id = if *n == 0 {
        base.clone()
    } else {
        format!("{base}-{n}")
    };
    *n += 1;
    id
}

fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut seen = BTreeMap::new();
    let mut heading: Option<String> = None;
    let mut block: Option<(String, String)> = None;
    for event in Parser::new_ext(text, pulldown_cmark::Options::all()) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                if let Some(h) = heading.take() {
                    parsed.anchors.insert(heading_id(&h, &mut seen));
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => parsed.links.push(dest_url.to_string()),
            Event::Start(Tag::Image { dest_url, .. }) => parsed.links.push(dest_url.to_string()),
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                block = Some((info.to_string(), String::new()))
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(b) = block.take() {
                    parsed.code.push(b);
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
                if let Some((_, b)) = block.as_mut() {
                    b.push_str(&t);
                }
            }
            _ => {}
        }
    }
    parsed
}

#[test]
fn the_generated_reference_is_current() {
    let dir = book_src().join("reference");
    for (name, text) in shopify_operator::docs::pages() {
        let path = dir.join(name);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == text,
            "{} is not what `shopify-operator docs` writes now: run `make docs` and commit it",
            path.display()
        );
    }
}

/// Checks one link of `from` (a file under `base`); returns a complaint.
fn check_link(
    base: &Path,
    from: &Path,
    link: &str,
    anchors: &BTreeMap<PathBuf, BTreeSet<String>>,
) -> Option<String> {
    if let Some(path) = link.strip_prefix(REPO_BLOB) {
        let path = path.split('#').next().unwrap_or_default();
        return (!root().join(path).exists()).then(|| format!("{link}: no file {path} in the repository"));
    }
    if link.contains("://") || link.starts_with("mailto:") {
        return None;
    }
    let (file, anchor) = match link.split_once('#') {
        Some((f, a)) => (f, Some(a)),
        None => (link, None),
    };
    let target = if file.is_empty() {
        from.to_path_buf()
    } else {
        let joined = from.parent().unwrap_or(Path::new("")).join(file);
        normalize(&joined)?
    };
    if !base.join(&target).exists() {
        return Some(format!("{link}: {} does not exist", target.display()));
    }
    if let Some(anchor) = anchor {
        let ids = anchors.get(&target)?;
        if !ids.contains(anchor) {
            return Some(format!("{link}: {} has no heading #{anchor}", target.display()));
        }
    }
    None
}

/// `a/b/../c` as `a/c`; `None` when it climbs out of the base.
fn normalize(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    Some(out)
}

#[test]
fn every_link_and_anchor_resolves_and_every_page_is_in_the_summary() {
    let base = book_src();
    let mut parsed = BTreeMap::new();
    for page in pages() {
        parsed.insert(page.clone(), parse(&read(&base.join(&page))));
    }
    let anchors: BTreeMap<PathBuf, BTreeSet<String>> = parsed
        .iter()
        .map(|(p, m)| (p.clone(), m.anchors.clone()))
        .collect();
    let mut problems = Vec::new();
    for (page, md) in &parsed {
        for link in &md.links {
            if link.is_empty() && page == Path::new("SUMMARY.md") {
                continue; // a draft chapter: a heading without a page
            }
            if let Some(p) = check_link(&base, page, link, &anchors) {
                problems.push(format!("docs/src/{}: {p}", page.display()));
            }
        }
    }
    // Every page is reachable from the summary (mdBook builds only those).
    let summary: BTreeSet<PathBuf> = parsed[Path::new("SUMMARY.md")]
        .links
        .iter()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    for page in parsed.keys() {
        if page != Path::new("SUMMARY.md") && !summary.contains(page) {
            problems.push(format!("docs/src/{} is not in SUMMARY.md", page.display()));
        }
    }
    // The README links into the book by path from the repository root.
    let readme = parse(&read(&root().join("README.md")));
    let root_anchors: BTreeMap<PathBuf, BTreeSet<String>> = anchors
        .iter()
        .map(|(p, a)| (Path::new("docs/src").join(p), a.clone()))
        .collect();
    for link in &readme.links {
        if let Some(p) = check_link(root(), Path::new("README.md"), link, &root_anchors) {
            problems.push(format!("README.md: {p}"));
        }
    }
    assert!(problems.is_empty(), "broken links:\n{}", problems.join("\n"));
}

#[test]
fn the_readme_is_the_front_door() {
    let lines = read(&root().join("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines (at most {README_MAX_LINES}): move the detail into the book"
    );
}

/// Every fenced block of the book and the README whose info string starts
/// with one of `langs`, with where it is.
fn blocks(langs: &[&str]) -> Vec<(String, String)> {
    let mut files: Vec<(String, PathBuf)> = pages()
        .into_iter()
        .map(|p| (format!("docs/src/{}", p.display()), book_src().join(p)))
        .collect();
    files.push(("README.md".into(), root().join("README.md")));
    let mut out = Vec::new();
    for (name, path) in files {
        for (i, (info, text)) in parse(&read(&path)).code.into_iter().enumerate() {
            let lang = info.split([',', ' ']).next().unwrap_or_default();
            if langs.contains(&lang) {
                out.push((format!("{name} (code block {})", i + 1), text));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_yaml_example_passes_a_server_dry_run() {
    let cp = testenv::shared(shopify_operator::crd::all).await;
    let ns = cp.namespace("docs").await.expect("namespace");
    let mut problems = Vec::new();
    let mut applied = 0;
    for (place, text) in blocks(&["yaml", "yml"]) {
        for (i, doc) in text.split("\n---").enumerate() {
            let value: serde_json::Value = match serde_norway::from_str(doc) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("{place}, document {}: not YAML: {e}", i + 1));
                    continue;
                }
            };
            if value.get("apiVersion").is_none() || value.get("kind").is_none() {
                continue; // a fragment (values, a spec excerpt): parsing is the check
            }
            if value["apiVersion"]
                .as_str()
                .is_some_and(|v| v.contains("fluxcd.io"))
            {
                continue; // Flux's CRDs are not installed in the test apiserver
            }
            let mut value = value;
            if value["metadata"].get("namespace").is_some() {
                value["metadata"]["namespace"] = ns.clone().into();
            }
            let out = std::process::Command::new(testenv::kubectl())
                .arg("--kubeconfig")
                .arg(cp.admin_kubeconfig())
                .args(["apply", "--dry-run=server", "-n", &ns, "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write as _;
                    let json = serde_json::to_vec(&value).expect("json");
                    child.stdin.take().expect("stdin").write_all(&json)?;
                    child.wait_with_output()
                })
                .expect("run kubectl");
            applied += 1;
            if !out.status.success() {
                problems.push(format!(
                    "{place}, document {}: kubectl apply --dry-run=server refused it: {}",
                    i + 1,
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "YAML examples:\n{}", problems.join("\n"));
    assert!(
        applied >= 3,
        "only {applied} YAML examples were applied: is the scan broken?"
    );
}

/// The Makefile's targets.
fn make_targets() -> BTreeSet<String> {
    read(&root().join("Makefile"))
        .lines()
        .filter_map(|l| {
            let (target, _) = l.split_once(':')?;
            let ok = !target.is_empty()
                && !l.starts_with(['\t', ' ', '#', '.'])
                && !l.contains(":=")
                && target
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            ok.then(|| target.to_string())
        })
        .collect()
}

/// Whether the chart's `values.yaml` has the dotted `key`.
fn chart_has_value(values: &serde_json::Value, key: &str) -> bool {
    let mut node = values;
    for part in key.split('.') {
        match node.get(part) {
            Some(n) => node = n,
            None => return false,
        }
    }
    true
}

/// A shell block's commands: continuation lines joined, comments, prompts
/// and output lines dropped.
fn commands(text: &str) -> Vec<Vec<String>> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .map(|l| l.trim().trim_start_matches("$ "))
        .map(|l| l.split(" #").next().unwrap_or_default())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// What is wrong with one `shopify-operator …` command line, if anything.
fn check_cli(words: &[String]) -> Option<String> {
    let mut cmd = shopify_operator::cli::Cli::command();
    let mut rest = &words[1..];
    while let Some(word) = rest.first() {
        if word.starts_with('-') {
            break;
        }
        match cmd.find_subcommand(word) {
            Some(sub) => {
                let sub = sub.clone();
                cmd = sub;
                rest = &rest[1..];
            }
            None if cmd.has_subcommands() => return Some(format!("no subcommand {word:?}")),
            None => break,
        }
    }
    for word in rest {
        if word == "|" || word == ">" || word.starts_with('>') {
            break;
        }
        if let Some(long) = word.strip_prefix("--") {
            let long = long.split('=').next().unwrap_or_default();
            if long != "help" && !cmd.get_arguments().any(|a| a.get_long() == Some(long)) {
                return Some(format!("`{}` has no flag --{long}", cmd.get_name()));
            }
        }
    }
    None
}

#[test]
fn every_shell_example_names_real_targets_flags_and_values() {
    let targets = make_targets();
    let values: serde_json::Value =
        serde_norway::from_str(&read(&root().join("charts/shopify-operator/values.yaml")))
            .expect("values.yaml");
    let mut problems = Vec::new();
    let mut checked = 0;
    for (place, text) in blocks(&["sh", "shell", "bash", "console"]) {
        for words in commands(&text) {
            // `VAR=value make x`: the command starts after the assignments.
            let start = words.iter().position(|w| !w.contains('=')).unwrap_or(words.len());
            let words = &words[start..];
            let Some(program) = words.first() else { continue };
            let line = words.join(" ");
            match program.as_str() {
                "make" => {
                    checked += 1;
                    for w in &words[1..] {
                        if w.starts_with('#') {
                            break;
                        }
                        if !w.starts_with('-') && !w.contains('=') && !targets.contains(w) {
                            problems.push(format!("{place}: `{line}`: no make target {w:?}"));
                        }
                    }
                }
                "shopify-operator" => {
                    checked += 1;
                    if let Some(p) = check_cli(words) {
                        problems.push(format!("{place}: `{line}`: {p}"));
                    }
                }
                "helm" => {
                    checked += 1;
                    for pair in words.windows(2).filter(|w| w[0] == "--set") {
                        let key = pair[1].split('=').next().unwrap_or_default();
                        if !chart_has_value(&values, key) {
                            problems.push(format!("{place}: `{line}`: the chart has no value {key:?}"));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "shell examples:\n{}", problems.join("\n"));
    assert!(
        checked >= 5,
        "only {checked} commands were checked: is the scan broken?"
    );
}

#[test]
fn the_book_builds() {
    let mdbook = support::hack_tool("MDBOOK_BIN", "mdbook.sh");
    let dest = tempdir();
    let out = std::process::Command::new(&mdbook)
        .arg("build")
        .arg(root().join("docs"))
        .arg("--dest-dir")
        .arg(&dest)
        .output()
        .expect("run mdbook");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mdbook build failed:\n{stderr}");
    assert!(
        !stderr.contains("WARN") && !stderr.contains("ERROR"),
        "mdbook warned:\n{stderr}"
    );
    for page in [
        "index.html",
        "reference/shopifyshop.html",
        "concepts/one-pass.html",
    ] {
        assert!(dest.join(page).is_file(), "the built book has no {page}");
    }
    let _ = std::fs::remove_dir_all(&dest);
}

/// A fresh folder for the built book.
fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shopify-operator-book-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the book's folder");
    dir
}
