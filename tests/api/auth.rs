//! Authentication, workspace isolation, authorization and the transport
//! rules every surface shares: tokens, JWTs, request ids, body limits,
//! health checks.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clientele::app::AppSettings;
use clientele::core::auth::{DEFAULT_JWT_LEEWAY_SECS, DEFAULT_JWT_MAX_LIFETIME_SECS, JwtSettings};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{
    ICPS, TestApp, create_icp, icp_path, minimal_icp, seed_icp_create, seed_icp_patch,
};

fn unauthorized(message: &str) -> Value {
    json!({"error": {"code": "UNAUTHORIZED", "message": message}})
}

#[tokio::test]
async fn missing_garbage_and_revoked_tokens_are_401() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let id = create_icp(&app, &token, &seed_icp_create()).await;
    let path = icp_path(&id);

    let missing = app
        .send(Method::PATCH, &path, None, Some(&seed_icp_patch()))
        .await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.body, unauthorized("Missing Authorization header"));
    assert_eq!(
        missing.header("www-authenticate").as_deref(),
        Some("Bearer")
    );

    let garbage = app
        .patch(&path, "clt_not-a-real-key", &seed_icp_patch())
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.body, unauthorized("Invalid API key"));

    let wrong_scheme = app
        .send_with(
            Method::GET,
            &path,
            None,
            None,
            &[("authorization", &format!("Basic {token}"))],
        )
        .await;
    assert_eq!(wrong_scheme.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_scheme.body,
        unauthorized("Authorization header must be 'Bearer <token>'")
    );

    // Lance wants the Bearer scheme; a bare token is refused there.
    let bare = app
        .send_with(Method::GET, &path, None, None, &[("authorization", &token)])
        .await;
    assert_eq!(bare.status, StatusCode::UNAUTHORIZED);

    let key_id = app
        .store
        .list_api_keys()
        .await
        .expect("list keys")
        .into_iter()
        .find(|key| key.user_id == "user_abc123")
        .expect("the key")
        .id;
    assert!(app.store.revoke_api_key(&key_id).await.expect("revoke"));
    // Key lookups are cached for up to 2 s: the revocation takes effect
    // within that time, never later.
    let revoked_at = std::time::Instant::now();
    let revoked = loop {
        let reply = app.get(&path, &token).await;
        if reply.status != StatusCode::OK {
            break reply;
        }
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_millis(2_500),
            "still accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(revoked.body, unauthorized("API key has been revoked"));
}

#[tokio::test]
async fn without_the_key_cache_a_revocation_is_immediate() {
    let app = TestApp::spawn_with(AppSettings {
        key_cache_ttl: std::time::Duration::ZERO,
        ..AppSettings::default()
    })
    .await;
    let token = app.member("acme", "user_abc123").await;
    assert_eq!(app.get(ICPS, &token).await.status, StatusCode::OK);
    let key_id = app.store.list_api_keys().await.expect("keys")[0].id.clone();
    assert!(app.store.revoke_api_key(&key_id).await.expect("revoke"));
    assert_eq!(app.get(ICPS, &token).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_record_of_another_workspace_is_not_found_even_for_its_admin() {
    let app = TestApp::spawn().await;
    let owner = app.member("acme", "user_abc123").await;
    let id = create_icp(&app, &owner, &seed_icp_create()).await;
    // Same user id, different workspace: still nothing to see.
    let outsider = app.member("globex", "user_abc123").await;
    let outsider_admin = app.admin("globex", "boss").await;
    for token in [&outsider, &outsider_admin] {
        for reply in [
            app.get(&icp_path(&id), token).await,
            app.patch(&icp_path(&id), token, &seed_icp_patch()).await,
            app.delete(&icp_path(&id), token).await,
        ] {
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
            assert_eq!(
                reply.body,
                json!({"error": {"code": "NOT_FOUND", "message": format!("ICP not found: {id}")}})
            );
        }
        let list = app.get(ICPS, token).await;
        assert_eq!(list.status, StatusCode::OK);
        assert_eq!(list.body, json!([]));
    }
    // And the record is untouched.
    let fetched = app.get(&icp_path(&id), &owner).await;
    assert_eq!(fetched.body["name"], "Enterprise Tech Leaders");
    assert_eq!(fetched.header("etag").as_deref(), Some("\"1\""));
}

#[tokio::test]
async fn an_admin_may_patch_an_icp_that_does_not_list_them() {
    let app = TestApp::spawn().await;
    let owner = app.member("acme", "user_abc123").await;
    let admin = app.admin("acme", "boss").await;
    let stranger = app.member("acme", "user_zzz999").await;
    let id = create_icp(&app, &owner, &seed_icp_create()).await;

    let forbidden = app
        .patch(&icp_path(&id), &stranger, &seed_icp_patch())
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let allowed = app.patch(&icp_path(&id), &admin, &seed_icp_patch()).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text);
    assert_eq!(allowed.body["name"], "Updated ICP Name");
    assert_eq!(
        allowed.body["userIds"],
        json!(["user_abc123", "user_def456"])
    );
}

const JWT_SECRET: &[u8] = b"test-secret-that-is-long-enough-for-hs256";

fn jwt_app_settings() -> AppSettings {
    AppSettings {
        jwt: Some(JwtSettings {
            algorithm: Algorithm::HS256,
            key: JwtSettings::decoding_key(Algorithm::HS256, JWT_SECRET).expect("key"),
            workspace_claim: "o.id".into(),
            role_claim: "o.rol".into(),
            admin_roles: vec!["admin".into()],
            issuer: Some("https://issuer.example".into()),
            audience: None,
            leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            max_lifetime_secs: Some(DEFAULT_JWT_MAX_LIFETIME_SECS),
        }),
        ..AppSettings::default()
    }
}

fn sign(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET),
    )
    .expect("sign")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn in_an_hour() -> i64 {
    now() + 3600
}

#[tokio::test]
async fn jwts_name_the_user_workspace_and_role() {
    let app = TestApp::spawn_with(jwt_app_settings()).await;
    let iss = "https://issuer.example";
    let member = sign(
        json!({"sub": "user_abc123", "iss": iss, "iat": now(), "exp": in_an_hour(), "o": {"id": "acme", "rol": "member"}}),
    );
    let admin = sign(
        json!({"sub": "boss", "iss": iss, "iat": now(), "exp": in_an_hour(), "o": {"id": "acme", "rol": "admin"}}),
    );
    let stranger = sign(
        json!({"sub": "user_zzz999", "iss": iss, "iat": now(), "exp": in_an_hour(), "o": {"id": "acme"}}),
    );
    let elsewhere = sign(
        json!({"sub": "user_abc123", "iss": iss, "iat": now(), "exp": in_an_hour(), "o": {"id": "globex"}}),
    );

    let id = create_icp(&app, &member, &seed_icp_create()).await;
    assert_eq!(
        app.get(&icp_path(&id), &member).await.status,
        StatusCode::OK
    );
    assert_eq!(app.get(&icp_path(&id), &admin).await.status, StatusCode::OK);
    assert_eq!(
        app.get(&icp_path(&id), &stranger).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get(&icp_path(&id), &elsewhere).await.status,
        StatusCode::NOT_FOUND
    );

    // API keys keep working beside JWTs.
    let key = app.member("acme", "user_abc123").await;
    assert_eq!(app.get(&icp_path(&id), &key).await.status, StatusCode::OK);

    let expired =
        sign(json!({"sub": "user_abc123", "iss": iss, "exp": 1_000, "o": {"id": "acme"}}));
    let wrong_issuer = sign(
        json!({"sub": "user_abc123", "iss": "https://evil.example", "iat": now(), "exp": in_an_hour(), "o": {"id": "acme"}}),
    );
    let no_workspace =
        sign(json!({"sub": "user_abc123", "iss": iss, "iat": now(), "exp": in_an_hour()}));
    let other_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub": "user_abc123", "iss": iss, "iat": now(), "exp": in_an_hour(), "o": {"id": "acme"}}),
        &EncodingKey::from_secret(b"another-secret-entirely-0123456789"),
    )
    .expect("sign");
    for token in [&expired, &wrong_issuer, &no_workspace, &other_secret] {
        let reply = app.get(&icp_path(&id), token).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
        assert_eq!(reply.body["error"]["code"], "UNAUTHORIZED");
    }
    let reply = app.get(&icp_path(&id), &no_workspace).await;
    assert_eq!(
        reply.body,
        unauthorized("Token has no valid 'o.id' claim naming a workspace")
    );
}

/// [`jwt_app_settings`] with `change` applied to the JWT settings.
fn jwt_app_settings_with(change: impl FnOnce(&mut JwtSettings)) -> AppSettings {
    let mut settings = jwt_app_settings();
    if let Some(jwt) = settings.jwt.as_mut() {
        change(jwt);
    }
    settings
}

/// Claims of a valid token of `user_abc123` in `acme` from the configured
/// issuer, issued at `at` for an hour, with `extra` merged in (a `null` in
/// `extra` removes that claim).
fn claims_at(at: i64, extra: Value) -> Value {
    let mut claims = json!({
        "sub": "user_abc123", "iss": "https://issuer.example",
        "iat": at, "exp": at + 3600, "o": {"id": "acme"},
    });
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        for (name, value) in extra {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
    }
    claims
}

#[tokio::test]
async fn expired_jwts_are_401_beyond_the_leeway_and_accepted_within_it() {
    // The default leeway is 5 s: a token expired 30 s ago, which the
    // library's own 60 s leeway used to accept, is refused.
    let app = TestApp::spawn_with(jwt_app_settings()).await;
    let t = now();
    let expired = sign(claims_at(t - 600, json!({"exp": t - 30})));
    let reply = app.get(ICPS, &expired).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.body, unauthorized("Token has expired"));

    // With a 60 s leeway, 20 s past exp is accepted and 120 s past is not.
    let lenient = TestApp::spawn_with(jwt_app_settings_with(|jwt| jwt.leeway_secs = 60)).await;
    let t = now();
    let within = sign(claims_at(t - 600, json!({"exp": t - 20})));
    let reply = lenient.get(ICPS, &within).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let beyond = sign(claims_at(t - 600, json!({"exp": t - 120})));
    let reply = lenient.get(ICPS, &beyond).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.body, unauthorized("Token has expired"));
}

#[tokio::test]
async fn a_jwt_before_its_nbf_is_401() {
    let app = TestApp::spawn_with(jwt_app_settings()).await;
    let t = now();
    let early = sign(claims_at(t, json!({"nbf": t + 600})));
    let reply = app.get(ICPS, &early).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.body, unauthorized("Token is not valid yet"));
    let ready = sign(claims_at(t, json!({"nbf": t - 60})));
    let reply = app.get(ICPS, &ready).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn a_jwt_living_longer_than_the_maximum_or_without_iat_is_401() {
    // Default maximum: a day.
    let app = TestApp::spawn_with(jwt_app_settings()).await;
    let t = now();
    let a_day = sign(claims_at(t, json!({"exp": t + 86_400})));
    let reply = app.get(ICPS, &a_day).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let refused = [
        (
            claims_at(t, json!({"exp": t + 86_401})),
            "Token lifetime exceeds 86400 s",
        ),
        (
            claims_at(t, json!({"iat": null})),
            "Token has no 'iat' claim; this server requires one to limit token lifetime to 86400 s",
        ),
        // An issue time in the future would make a year-long token look
        // short-lived.
        (
            claims_at(
                t,
                json!({"iat": t + 365 * 86_400, "exp": t + 365 * 86_400 + 60}),
            ),
            "Token was issued in the future ('iat')",
        ),
    ];
    for (claims, message) in refused {
        let reply = app.get(ICPS, &sign(claims)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
        assert_eq!(reply.body, unauthorized(message));
    }

    // `--jwt-max-lifetime-secs 0`: no maximum, and `iat` is optional.
    let unbounded =
        TestApp::spawn_with(jwt_app_settings_with(|jwt| jwt.max_lifetime_secs = None)).await;
    let t = now();
    let a_year = sign(claims_at(t, json!({"iat": null, "exp": t + 365 * 86_400})));
    let reply = unbounded.get(ICPS, &a_year).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

/// Words of the JWT library that must never reach a client: enum variant
/// names, its algorithm lists, base64 and JSON error positions.
const LIBRARY_INTERNALS: [&str; 9] = [
    "Signature",
    "Algorithm",
    "Base64",
    "base64",
    "JSON",
    "column",
    "offset",
    "Invalid token",
    "[",
];

/// Asserts a 401 in the Lance envelope with exactly `message`, free of
/// library internals.
fn assert_refused(reply: &crate::support::Reply, message: &str) {
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text);
    assert_eq!(reply.body, unauthorized(message));
    for internal in LIBRARY_INTERNALS {
        assert!(
            !message.contains(internal),
            "{message:?} contains {internal:?}"
        );
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn a_jwt_with_a_critical_header_extension_is_401() {
    let app = TestApp::spawn_with(jwt_app_settings()).await;
    let mut header = Header::new(Algorithm::HS256);
    header.crit = Some(vec!["https://example.com/ext".into()]);
    header.extras.insert("https://example.com/ext", true);
    let token = jsonwebtoken::encode(
        &header,
        &claims_at(now(), json!({})),
        &EncodingKey::from_secret(JWT_SECRET),
    )
    .expect("sign");
    let reply = app.get(ICPS, &token).await;
    assert_refused(
        &reply,
        "Token header lists critical extensions ('crit'); this server supports none",
    );
}

#[tokio::test]
async fn bad_jwts_get_401_messages_about_the_token_not_the_library() {
    let app = TestApp::spawn_with(jwt_app_settings()).await;
    let claims = claims_at(now(), json!({}));
    let good = sign(claims.clone());
    assert_eq!(app.get(ICPS, &good).await.status, StatusCode::OK);
    let parts: Vec<&str> = good.split('.').collect();
    let (header, signature) = (parts[0], parts[2]);

    let other_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"another-secret-entirely-0123456789"),
    )
    .expect("sign");
    let admin_claims = claims_at(now(), json!({"o": {"id": "acme", "rol": "admin"}}));
    let tampered = format!("{header}.{}.{signature}", b64(admin_claims.to_string()));
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET),
    )
    .expect("sign");
    let cases = [
        (other_secret, "Token signature does not verify"),
        (tampered, "Token signature does not verify"),
        (
            format!("{header}.{}.{signature}!", b64(claims.to_string())),
            "Token is malformed",
        ),
        (
            format!("eyJ!!.{}.{signature}", b64(claims.to_string())),
            "Token is malformed",
        ),
        (
            hs512,
            "Token algorithm HS512 is not accepted; this server accepts HS256",
        ),
        (
            sign(claims_at(now(), json!({"iss": "https://evil.example"}))),
            "Token issuer is not accepted",
        ),
        (
            sign(claims_at(now(), json!({"iss": null}))),
            "Token has no valid 'iss' claim",
        ),
        (
            sign(claims_at(now(), json!({"exp": "tomorrow"}))),
            "Token claim 'exp' must be a number of seconds since 1970",
        ),
    ];
    for (token, message) in &cases {
        let reply = app.get(ICPS, token).await;
        assert_refused(&reply, message);
    }
}

/// A server accepting `algorithm` with `public_pem` accepts tokens signed
/// with the matching private key, and refuses the classic forgeries: an
/// HS256 token whose HMAC key is the public key PEM (key confusion), the
/// same HMAC under a header claiming `algorithm`, `alg: none`, and a
/// payload changed after signing.
async fn asymmetric_server_accepts_only_its_own_signatures(
    algorithm: Algorithm,
    name: &str,
    private_pem: &[u8],
    public_pem: &[u8],
) {
    let app = TestApp::spawn_with(AppSettings {
        jwt: Some(JwtSettings {
            algorithm,
            key: JwtSettings::decoding_key(algorithm, public_pem).expect("public key"),
            ..jwt_app_settings().jwt.expect("JWT settings")
        }),
        ..AppSettings::default()
    })
    .await;
    let private_key = match algorithm {
        Algorithm::RS256 => EncodingKey::from_rsa_pem(private_pem),
        _ => EncodingKey::from_ec_pem(private_pem),
    }
    .expect("private key");
    let claims = claims_at(now(), json!({}));
    let good = jsonwebtoken::encode(&Header::new(algorithm), &claims, &private_key).expect("sign");
    let reply = app.get(ICPS, &good).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);

    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(public_pem),
    )
    .expect("sign");
    assert_refused(
        &app.get(ICPS, &confused).await,
        &format!("Token algorithm HS256 is not accepted; this server accepts {name}"),
    );

    // The same HMAC, under a header that names the server's algorithm.
    let message = format!(
        "{}.{}",
        b64(format!(r#"{{"alg":"{name}","typ":"JWT"}}"#)),
        b64(claims.to_string())
    );
    let hmac = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(public_pem),
        Algorithm::HS256,
    )
    .expect("HMAC");
    assert_refused(
        &app.get(ICPS, &format!("{message}.{hmac}")).await,
        "Token signature does not verify",
    );

    for alg in ["none", "None", "NONE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#)),
            b64(claims.to_string())
        );
        assert_refused(
            &app.get(ICPS, &unsigned).await,
            &format!("Token algorithm {alg} is not accepted; this server accepts {name}"),
        );
    }

    let parts: Vec<&str> = good.split('.').collect();
    let admin_claims = claims_at(now(), json!({"o": {"id": "acme", "rol": "admin"}}));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(admin_claims.to_string()),
        parts[2]
    );
    assert_refused(
        &app.get(ICPS, &tampered).await,
        "Token signature does not verify",
    );
}

#[tokio::test]
async fn an_rs256_server_refuses_key_confusion_and_unsigned_jwts() {
    asymmetric_server_accepts_only_its_own_signatures(
        Algorithm::RS256,
        "RS256",
        include_bytes!("../fixtures/jwt/rs256-TEST-ONLY-private.pem"),
        include_bytes!("../fixtures/jwt/rs256-public.pem"),
    )
    .await;
}

#[tokio::test]
async fn an_es256_server_refuses_key_confusion_and_unsigned_jwts() {
    asymmetric_server_accepts_only_its_own_signatures(
        Algorithm::ES256,
        "ES256",
        include_bytes!("../fixtures/jwt/es256-TEST-ONLY-private.pem"),
        include_bytes!("../fixtures/jwt/es256-public.pem"),
    )
    .await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let echoed = app
        .send_with(
            Method::GET,
            ICPS,
            Some(&token),
            None,
            &[("x-request-id", "trace-42")],
        )
        .await;
    // The response's request id is the server's; the client's is echoed
    // beside it.
    assert_ne!(echoed.header("x-request-id").as_deref(), Some("trace-42"));
    assert_eq!(
        echoed.header("x-client-request-id").as_deref(),
        Some("trace-42")
    );
    let generated = app.get(ICPS, &token).await;
    let id = generated
        .header("x-request-id")
        .expect("a generated request id");
    assert!(!id.is_empty() && id != "trace-42");
    // An id that could forge log lines is replaced, not echoed.
    let hostile = app
        .send_with(
            Method::GET,
            ICPS,
            Some(&token),
            None,
            &[("x-request-id", &"a".repeat(500))],
        )
        .await;
    assert_ne!(hostile.header("x-request-id"), Some("a".repeat(500)));
    assert_eq!(hostile.header("x-client-request-id"), None);
}

#[tokio::test]
async fn a_two_mebibyte_body_is_413() {
    let app = TestApp::spawn().await;
    let token = app.member("acme", "user_abc123").await;
    let id = create_icp(&app, &token, &minimal_icp("Big")).await;
    let body = json!({"description": "x".repeat(2 * 1024 * 1024)});
    for reply in [
        app.patch(&icp_path(&id), &token, &body).await,
        app.post(ICPS, &token, &body).await,
    ] {
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            reply.body,
            json!({"error": {"code": "PAYLOAD_TOO_LARGE", "message": "Request body must not exceed 1048576 bytes"}})
        );
    }
    let fetched = app.get(&icp_path(&id), &token).await;
    assert_eq!(fetched.body["description"], Value::Null);
}

#[tokio::test]
async fn health_readiness_and_unknown_routes() {
    let app = TestApp::spawn().await;
    let health = app.send(Method::GET, "/healthz", None, None).await;
    assert_eq!(
        (health.status, health.text.as_str()),
        (StatusCode::OK, "ok")
    );
    let ready = app.send(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        (ready.status, ready.text.as_str()),
        (StatusCode::OK, "ready")
    );
    let unknown = app.send(Method::GET, "/nope", None, None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown.body,
        json!({"error": {"code": "NOT_FOUND", "message": "No route matches this path"}})
    );
    let wrong_method = app.send(Method::PUT, ICPS, None, None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}
