//! The command line explains itself and manages keys.

use crate::support::run_cli;

#[test]
fn help_explains_every_command() {
    let help = run_cli(&["--help"]);
    for command in ["serve", "keys", "migrate", "openapi"] {
        assert!(help.contains(command), "--help mentions {command}:\n{help}");
    }
    let serve = run_cli(&["serve", "--help"]);
    for flag in [
        "--listen",
        "--database-url",
        "CLIENTELE_DATABASE_URL",
        "--log-format",
        "--jwt-algorithm",
        "--header-read-timeout-secs",
        "--idle-timeout-secs",
        "--max-connections",
        "CLIENTELE_MAX_CONNECTIONS",
        "127.0.0.1:8080",
    ] {
        assert!(
            serve.contains(flag),
            "serve --help mentions {flag}:\n{serve}"
        );
    }
    let keys = run_cli(&["keys", "create", "--help"]);
    for flag in ["--workspace", "--user", "--admin", "--database-url"] {
        assert!(
            keys.contains(flag),
            "keys create --help mentions {flag}:\n{keys}"
        );
    }
}

#[test]
fn keys_are_created_listed_and_revoked() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", directory.path().join("keys.db").display());
    let token = run_cli(&[
        "keys",
        "create",
        "--workspace",
        "acme",
        "--user",
        "ann",
        "--admin",
        "--database-url",
        &database_url,
    ]);
    let token = token.trim();
    assert!(token.starts_with("clt_") && token.len() == 68, "{token}");

    let listing = run_cli(&["keys", "list", "--database-url", &database_url]);
    assert!(!listing.contains(token), "the token itself is never listed");
    let line = listing
        .lines()
        .find(|line| line.contains("ann"))
        .expect("the key is listed");
    assert!(
        line.contains("acme") && line.contains("admin") && line.contains("active"),
        "{line}"
    );
    let id = line.split_whitespace().next().expect("an id column");

    assert_eq!(
        run_cli(&["keys", "revoke", id, "--database-url", &database_url]).trim(),
        format!("revoked {id}")
    );
    let listing = run_cli(&["keys", "list", "--database-url", &database_url]);
    assert!(
        listing
            .lines()
            .any(|line| line.contains(id) && line.contains("revoked")),
        "{listing}"
    );

    let again = std::process::Command::new(env!("CARGO_BIN_EXE_clientele"))
        .args(["keys", "revoke", id, "--database-url", &database_url])
        .output()
        .expect("run clientele");
    assert!(!again.status.success(), "revoking twice is an error");
}
