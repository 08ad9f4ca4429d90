//! The command line explains itself, manages keys and configures JWTs.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ICPS, ServerProcess, run_cli};

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
        "--jwt-leeway-secs",
        "CLIENTELE_JWT_LEEWAY_SECS",
        "--jwt-max-lifetime-secs",
        "CLIENTELE_JWT_MAX_LIFETIME_SECS",
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

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn the_jwt_flags_reach_the_server() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", directory.path().join("jwt.db").display());
    let server = ServerProcess::start_with(
        &database_url,
        &[
            "--jwt-algorithm",
            "ES256",
            "--jwt-key",
            &fixture("es256-public.pem"),
            "--jwt-leeway-secs",
            "0",
            "--jwt-max-lifetime-secs",
            "60",
        ],
    );
    let private_pem =
        std::fs::read(fixture("es256-TEST-ONLY-private.pem")).expect("read the test key");
    let key = EncodingKey::from_ec_pem(&private_pem).expect("private key");
    let client = crate::support::http_client();
    let get = async |iat: i64, exp: i64| {
        let claims = json!({"sub": "ann", "org_id": "default", "iat": iat, "exp": exp});
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &key).expect("sign");
        let response = client
            .get(format!("{}{ICPS}", server.base_url))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        (status, body["error"]["message"].clone())
    };
    let now = chrono::Utc::now().timestamp();
    assert_eq!(get(now, now + 60).await.0, StatusCode::OK);
    assert_eq!(
        get(now, now + 61).await,
        (
            StatusCode::UNAUTHORIZED,
            json!("Token lifetime exceeds 60 s")
        )
    );
    // Two seconds past exp: within the default 5 s leeway, but not 0 s.
    assert_eq!(
        get(now - 30, now - 2).await,
        (StatusCode::UNAUTHORIZED, json!("Token has expired"))
    );
}

#[test]
fn serve_refuses_a_jwt_key_that_could_never_verify() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let database_url = format!("sqlite://{}", directory.path().join("jwt.db").display());
    let cases = [
        (
            "RS256",
            fixture("rs256-TEST-ONLY-private.pem"),
            "--jwt-key: not an RSA public key in PEM form",
        ),
        (
            "ES256",
            fixture("es384-public.pem"),
            "--jwt-key: not a P-256 public key in PEM form",
        ),
        (
            "HS256",
            "a-31-byte-secret-is-too-short!!".to_owned(),
            "--jwt-key: an HS256 secret must have at least 32 bytes",
        ),
    ];
    for (algorithm, key, message) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_clientele"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                &database_url,
            ])
            .args(["--jwt-algorithm", algorithm, "--jwt-key", &key])
            .output()
            .expect("run clientele");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{algorithm} {key} was accepted");
        assert!(stderr.contains(message), "{algorithm} {key}: {stderr}");
    }
}
