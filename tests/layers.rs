//! The layers of `src/` depend one way, top to bottom:
//!
//! ```text
//! cli → app → surfaces → http → core → store
//! ```
//!
//! A file may use the modules below its own (any of them: `app` and `cli`
//! may reach the store to open it), never one above, except that
//! `surfaces` and `http` must not reach past the core to the store. This
//! test reads every `.rs` file under `src/`, collects the `crate::…` paths
//! in its code (use lines and inline paths, grouped `crate::{…}` imports,
//! and `super::` chains that climb to the crate root; comments and string
//! literals are ignored) and fails naming the file, line and reference of
//! each import that breaks the rule. A `#[macro_export]` macro, named from
//! the crate root, belongs to the layer of the file that defines it. `lib.rs` and `main.rs` are exempt. A
//! file or module missing from the map fails too, so a new top module must
//! be given its place here.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// The layers, top first. `cli` sits above `app`: it runs the application,
/// and the application must not depend on the command line.
const LAYERS: [&str; 7] = [
    "cli", "app", "delivery", "surfaces", "http", "core", "store",
];

/// Layers that must speak to the store only through the core.
const NOT_TO_THE_STORE: [&str; 3] = ["delivery", "surfaces", "http"];

/// Files that assemble the crate and belong to no layer.
const EXEMPT: [&str; 2] = ["lib.rs", "main.rs"];

/// One import that breaks the layering.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    reference: String,
    why: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "src/{}:{}: {} ({})",
            self.file, self.line, self.reference, self.why
        )
    }
}

/// A reference from code to a top module of the crate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    line: usize,
    module: String,
    text: String,
}

fn rank(layer: &str) -> Option<usize> {
    LAYERS.iter().position(|known| *known == layer)
}

/// The module path of a file under `src/` (`http/extract.rs` is
/// `["http", "extract"]`, `surfaces/lance/mod.rs` is `["surfaces", "lance"]`).
fn module_path(file: &str) -> Vec<String> {
    let mut segments: Vec<String> = file.split('/').map(str::to_owned).collect();
    if let Some(last) = segments.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" {
            segments.push(stem.to_owned());
        }
    }
    segments
}

/// The file's code with comments, string and character literals blanked
/// out (newlines kept, so line numbers stay right).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let previous = if i == 0 { None } else { Some(chars[i - 1]) };
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && previous.is_none_or(|p| !is_ident(p) || p == 'b')
        {
            // A raw string: r"…", r#"…"#, br"…".
            let mut hashes = 0;
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < chars.len() {
                if chars[j] == '"' && (1..=hashes).all(|k| chars.get(j + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            for &skipped in &chars[i..j.min(chars.len())] {
                out.push(blank(skipped));
            }
            i = j;
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < chars.len() {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\''), or a lifetime ('a).
            let literal_end = match next {
                Some('\\') => (i + 3..chars.len()).find(|&j| chars[j] == '\''),
                Some(_) if chars.get(i + 2) == Some(&'\'') => Some(i + 2),
                _ => None,
            };
            match literal_end {
                Some(end) => {
                    for _ in i..=end {
                        out.push(' ');
                    }
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Identifiers and punctuation (`::` as one token), with their lines.
fn tokens(code: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push((line, chars[start..i].iter().collect()));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push((line, "::".to_owned()));
            i += 2;
        } else {
            tokens.push((line, c.to_string()));
            i += 1;
        }
    }
    tokens
}

/// The top modules named after the crate root at `tokens[at..]`: one
/// identifier, or each item of a `{…}` group, or `*`.
fn roots_at(tokens: &[(usize, String)], at: usize) -> Vec<String> {
    match tokens.get(at).map(|(_, token)| token.as_str()) {
        Some("{") => {
            let mut roots = Vec::new();
            let mut depth = 0;
            let mut expect_item = true;
            for (_, token) in &tokens[at..] {
                match token.as_str() {
                    "{" => {
                        depth += 1;
                        continue;
                    }
                    "}" => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    "," if depth == 1 => {
                        expect_item = true;
                        continue;
                    }
                    name if depth == 1 && expect_item && name != "self" => {
                        roots.push(name.to_owned());
                    }
                    _ => {}
                }
                expect_item = false;
            }
            roots
        }
        Some(token) => vec![token.to_owned()],
        None => Vec::new(),
    }
}

/// Every reference to a top module of the crate in `source`, the code of
/// the file at `file` (relative to `src/`).
fn references(file: &str, source: &str) -> Vec<Reference> {
    let tokens = tokens(&code_only(source));
    let file_path = module_path(file);
    // The brace depth inside which each enclosing inline `mod x { … }` is.
    let mut inline_modules: Vec<i64> = Vec::new();
    let mut depth: i64 = 0;
    let mut found = Vec::new();
    let token = |at: usize| tokens.get(at).map_or("", |(_, token)| token.as_str());
    let mut at = 0;
    while at < tokens.len() {
        let (line, current) = (tokens[at].0, token(at));
        match current {
            "{" => depth += 1,
            "}" => {
                depth -= 1;
                if inline_modules.last() == Some(&(depth + 1)) {
                    inline_modules.pop();
                }
            }
            "mod" if token(at + 2) == "{" => inline_modules.push(depth + 1),
            "crate"
                if token(at + 1) == "::" && !matches!(token(at.wrapping_sub(1)), "$" | "::") =>
            {
                for module in roots_at(&tokens, at + 2) {
                    found.push(Reference {
                        line,
                        text: format!("crate::{module}"),
                        module,
                    });
                }
            }
            "super" if token(at + 1) == "::" && token(at.wrapping_sub(1)) != "::" => {
                let mut supers = 0;
                while token(at + 2 * supers) == "super" && token(at + 2 * supers + 1) == "::" {
                    supers += 1;
                }
                let depth_of_module = file_path.len() + inline_modules.len();
                if supers >= depth_of_module {
                    let climbed = "super::".repeat(supers);
                    for module in roots_at(&tokens, at + 2 * supers) {
                        found.push(Reference {
                            line,
                            text: format!("{climbed}{module}"),
                            module,
                        });
                    }
                }
                at += 2 * supers;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    found
}

/// The `#[macro_export]` macros that `source` defines: they are named from
/// the crate root (`crate::name!`) but belong to the layer of their file.
fn exported_macros(source: &str) -> Vec<String> {
    let tokens = tokens(&code_only(source));
    let mut names = Vec::new();
    let mut exported = false;
    for (at, (_, token)) in tokens.iter().enumerate() {
        match token.as_str() {
            "macro_export" => exported = true,
            "macro_rules" if tokens.get(at + 1).is_some_and(|(_, next)| next == "!") => {
                if let (true, Some((_, name))) = (exported, tokens.get(at + 2)) {
                    names.push(name.clone());
                }
                exported = false;
            }
            _ => {}
        }
    }
    names
}

/// The layer of each exported macro in `files`.
fn macro_layers(files: &[(String, String)]) -> BTreeMap<String, String> {
    let mut layers = BTreeMap::new();
    for (file, source) in files {
        let layer = module_path(file).first().cloned().unwrap_or_default();
        for name in exported_macros(source) {
            layers.insert(name, layer.clone());
        }
    }
    layers
}

/// The imports in `files` (paths relative to `src/`, with `/`, and their
/// text) that break the layering.
fn violations_in(files: &[(String, String)]) -> Vec<Violation> {
    let macro_layers = macro_layers(files);
    files
        .iter()
        .flat_map(|(file, source)| file_violations(file, source, &macro_layers))
        .collect()
}

/// [`violations_in`] for one file.
fn violations(file: &str, source: &str) -> Vec<Violation> {
    violations_in(&[(file.to_owned(), source.to_owned())])
}

/// The layer a reference lands in: its top module, or for an exported
/// macro the layer of the file that defines it.
fn layer_of<'a>(reference: &'a Reference, macro_layers: &'a BTreeMap<String, String>) -> &'a str {
    macro_layers
        .get(&reference.module)
        .unwrap_or(&reference.module)
}

fn file_violations(
    file: &str,
    source: &str,
    macro_layers: &BTreeMap<String, String>,
) -> Vec<Violation> {
    if EXEMPT.contains(&file) {
        return Vec::new();
    }
    let layer = module_path(file).first().cloned().unwrap_or_default();
    let violation = |line, reference: &str, why: String| Violation {
        file: file.to_owned(),
        line,
        reference: reference.to_owned(),
        why,
    };
    let Some(own_rank) = rank(&layer) else {
        return vec![violation(
            1,
            file,
            format!("file of layer '{layer}', which is not in the layer map"),
        )];
    };
    let mut found = Vec::new();
    for reference in references(file, source) {
        let target = layer_of(&reference, macro_layers);
        match rank(target) {
            None => found.push(violation(
                reference.line,
                &reference.text,
                format!("'{target}' is not in the layer map"),
            )),
            Some(target_rank) if target_rank < own_rank => found.push(violation(
                reference.line,
                &reference.text,
                format!("{layer} imports {target}, a layer above it"),
            )),
            Some(_) if target == "store" && NOT_TO_THE_STORE.contains(&layer.as_str()) => found
                .push(violation(
                    reference.line,
                    &reference.text,
                    format!("{layer} must reach the store only through the core"),
                )),
            Some(_) => {}
        }
    }
    found
}

/// Every `.rs` file under `dir`, as (path relative to `root` with `/`, text).
fn sources(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(root, &path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path
                .strip_prefix(root)
                .expect("under src")
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
            out.push((relative, text));
        }
    }
}

#[test]
fn every_import_in_src_goes_down_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    assert!(files.len() > 10, "src/ has its files");
    let found = violations_in(&files);
    let macro_layers = macro_layers(&files);
    let mut graph: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (file, text) in &files {
        if EXEMPT.contains(&file.as_str()) {
            continue;
        }
        let layer = module_path(file).first().cloned().unwrap_or_default();
        for reference in references(file, text) {
            let target = layer_of(&reference, &macro_layers).to_owned();
            if target != layer {
                *graph.entry((layer.clone(), target)).or_default() += 1;
            }
        }
    }
    println!("imports between layers (references in code):");
    for ((from, to), count) in &graph {
        println!("  {from} -> {to}: {count}");
    }
    assert!(
        found.is_empty(),
        "{} import(s) break the layering ({}; surfaces and http reach the store only \
         through the core):\n{}",
        found.len(),
        LAYERS.join(" → "),
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn an_upward_import_is_named_with_file_line_and_reference() {
    let source = "//! The store.\n\nuse std::fmt;\nuse crate::core::error::DomainError;\n";
    assert_eq!(
        violations("store/redis_limiter.rs", source),
        [Violation {
            file: "store/redis_limiter.rs".into(),
            line: 4,
            reference: "crate::core".into(),
            why: "store imports core, a layer above it".into(),
        }]
    );
    assert_eq!(
        violations("store/redis_limiter.rs", source)[0].to_string(),
        "src/store/redis_limiter.rs:4: crate::core (store imports core, a layer above it)"
    );
}

#[test]
fn inline_paths_and_grouped_imports_count() {
    let source = "use crate::{core::error::DomainError, app::AppState, self};\n\
                  fn f() {\n    let _ = crate::surfaces::lance::router();\n}\n";
    let found: Vec<(usize, String)> = violations("http/extract.rs", source)
        .into_iter()
        .map(|violation| (violation.line, violation.reference))
        .collect();
    assert_eq!(
        found,
        [
            (1, "crate::app".to_owned()),
            (3, "crate::surfaces".to_owned())
        ]
    );
}

#[test]
fn surfaces_and_http_must_not_reach_the_store() {
    for file in ["surfaces/mod.rs", "surfaces/hood/wire.rs", "http/state.rs"] {
        let found = violations(file, "use crate::store::HistoryEntry;\n");
        assert_eq!(found.len(), 1, "{file}");
        assert!(found[0].why.contains("only through the core"), "{found:?}");
    }
    // The layers above them may open it; the core is built on it.
    for file in ["app.rs", "cli.rs", "core/records.rs"] {
        assert_eq!(violations(file, "use crate::store::SharedStore;\n"), []);
    }
}

#[test]
fn downward_imports_pass_and_cli_sits_above_app() {
    let source = "use crate::app;\nuse crate::surfaces::hood::Hood;\nuse crate::http::Surface;\n\
                  use crate::core::auth::Role;\nuse crate::store::connect;\n";
    assert_eq!(violations("cli.rs", source), []);
    assert_eq!(
        violations("surfaces/hood/mod.rs", "use crate::http::AppState;\n"),
        []
    );
    assert_eq!(
        violations("core/auth.rs", "use crate::core::error::DomainError;\n"),
        []
    );
    let found = violations("app.rs", "use crate::cli::run;\n");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reference, "crate::cli");
}

#[test]
fn comments_strings_and_macros_are_not_imports() {
    let source = r##"//! See [`crate::app`].
/// Built by [`crate::app::build`]; /* crate::cli */
/* block crate::surfaces /* nested crate::app */ still comment crate::app */
fn f<'a>(text: &'a str) -> char {
    let _ = "crate::app::AppState";
    let _ = r#"crate::cli "quoted" crate::app"#;
    let _ = b"crate::app";
    let _ = '"';
    let _ = '\'';
    macro_rules! m { () => { $crate::app::X } }
    '"'
}
use crate::app::Late;
"##;
    let found = violations("http/mod.rs", source);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].line, found[0].reference.as_str()),
        (13, "crate::app")
    );
}

#[test]
fn super_chains_that_climb_to_the_root_count() {
    let source = "use super::rate_limit::RateLimitSlot;\nuse super::super::app::AppState;\n\
                  #[cfg(test)]\nmod tests {\n    use super::*;\n    use super::super::Surface;\n}\n";
    let found = violations("http/extract.rs", source);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        (found[0].line, found[0].reference.as_str()),
        (2, "super::super::app")
    );
    // From a file at the top, one super reaches the root.
    let found = violations("app.rs", "use super::cli::Cli;\n");
    assert_eq!(found.len(), 1);
}

#[test]
fn exported_macros_belong_to_the_layer_that_defines_them() {
    let files = [
        (
            "surfaces/schema.rs",
            "#[macro_export]\nmacro_rules! described { () => {} }\nmacro_rules! local { () => {} }\n",
        ),
        ("surfaces/lance/wire.rs", "use crate::described;\n"),
        (
            "core/icp.rs",
            "fn f() {}\ncrate::described! {}\nuse crate::local;\n",
        ),
    ]
    .map(|(file, text)| (file.to_owned(), text.to_owned()));
    let found: Vec<String> = violations_in(&files)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        found,
        [
            "src/core/icp.rs:2: crate::described (core imports surfaces, a layer above it)",
            "src/core/icp.rs:3: crate::local ('local' is not in the layer map)",
        ]
    );
}

#[test]
fn files_and_modules_outside_the_map_fail() {
    assert_eq!(violations("metrics.rs", "fn f() {}\n").len(), 1);
    let found = violations("http/mod.rs", "use crate::metrics::Counter;\n");
    assert_eq!(found.len(), 1);
    assert!(found[0].why.contains("not in the layer map"));
    assert_eq!(
        violations("lib.rs", "pub mod app;\nuse crate::app::X;\n"),
        []
    );
    assert_eq!(violations("main.rs", "use crate::cli;\n"), []);
}
