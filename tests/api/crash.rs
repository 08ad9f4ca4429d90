//! Crash safety under load: many clients write while the server is
//! SIGKILLed at random moments, several times; after each restart every
//! write that was acknowledged with a 2xx is there and every record reads
//! back valid. The number of kills and writes is printed; set
//! `CLIENTELE_CRASH_ROUNDS` for a longer run (default 4).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::Rng;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{ServerProcess, TestDatabase, run_cli};

const CLIENTS: usize = 12;

/// What the clients saw acknowledged: per client, the highest sequence
/// number whose PATCH got a 2xx, and every profile whose creation did.
#[derive(Default)]
struct Acknowledged {
    patched: HashMap<usize, u64>,
    created: Vec<String>,
    writes: usize,
}

async fn write_until_the_server_dies(
    base_url: String,
    token: String,
    profile: String,
    client_index: usize,
    first_sequence: u64,
    acknowledged: Arc<Mutex<Acknowledged>>,
) {
    let client = crate::support::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut sequence = first_sequence;
    loop {
        sequence += 1;
        let patch = client
            .patch(format!("{base_url}/v1/hood/profiles/{profile}"))
            .bearer_auth(&token)
            .json(&json!({"custom_properties": {format!("c{client_index}"): sequence}}))
            .send()
            .await;
        match patch {
            Ok(response) if response.status().is_success() => {
                if let Ok(mut seen) = acknowledged.lock() {
                    seen.patched.insert(client_index, sequence);
                    seen.writes += 1;
                }
            }
            Ok(response) => panic!("unexpected {} on PATCH", response.status()),
            Err(_) => return,
        }
        let create = client
            .post(format!("{base_url}/v1/hood/profiles"))
            .bearer_auth(&token)
            .json(&json!({"email": format!("c{client_index}.s{sequence}@example.com")}))
            .send()
            .await;
        match create {
            Ok(response) if response.status() == StatusCode::CREATED => {
                let body: Value = match response.json().await {
                    Ok(body) => body,
                    Err(_) => return,
                };
                if let (Some(id), Ok(mut seen)) = (body["id"].as_str(), acknowledged.lock()) {
                    seen.created.push(id.to_owned());
                    seen.writes += 1;
                }
            }
            Ok(response) => panic!("unexpected {} on POST", response.status()),
            Err(_) => return,
        }
    }
}

async fn get(client: &reqwest::Client, url: String, token: &str) -> (StatusCode, Value) {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_random_sigkills_under_load() {
    let rounds: usize = std::env::var("CLIENTELE_CRASH_ROUNDS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(4);
    let database = TestDatabase::create().await;
    let token = run_cli(&[
        "keys",
        "create",
        "--workspace",
        "acme",
        "--user",
        "u1",
        "--database-url",
        database.url(),
    ])
    .trim()
    .to_owned();
    let flags = ["--hood-rate-limit", "off"];
    let client = crate::support::http_client();
    let mut server = ServerProcess::start_with(database.url(), &flags);
    let created = client
        .post(format!("{}/v1/hood/profiles", server.base_url))
        .bearer_auth(&token)
        .json(&json!({"email": "shared@example.com"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), StatusCode::CREATED);
    let shared: Value = created.json().await.expect("json");
    let shared = shared["id"].as_str().expect("id").to_owned();

    let acknowledged = Arc::new(Mutex::new(Acknowledged::default()));
    let mut total_writes = 0usize;
    for round in 0..rounds {
        let writers: Vec<_> = (0..CLIENTS)
            .map(|index| {
                tokio::spawn(write_until_the_server_dies(
                    server.base_url.clone(),
                    token.clone(),
                    shared.clone(),
                    index,
                    (round as u64) * 1_000_000,
                    acknowledged.clone(),
                ))
            })
            .collect();
        let pause = rand::rng().random_range(300..1_200);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        server.kill_hard();
        for writer in writers {
            writer.await.expect("writer task");
        }

        server = ServerProcess::start_with(database.url(), &flags);
        let (status, profile) = get(
            &client,
            format!("{}/v1/hood/profiles/{shared}", server.base_url),
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (patched, created, writes) = {
            let seen = acknowledged.lock().expect("lock");
            (seen.patched.clone(), seen.created.clone(), seen.writes)
        };
        for (client_index, sequence) in &patched {
            let stored = profile["custom_properties"][format!("c{client_index}")]
                .as_u64()
                .unwrap_or(0);
            assert!(
                stored >= *sequence,
                "round {round}: client {client_index} was acknowledged {sequence} but the record holds {stored}"
            );
        }
        for id in &created {
            let (status, body) = get(
                &client,
                format!("{}/v1/hood/profiles/{id}", server.base_url),
                &token,
            )
            .await;
            assert_eq!(
                status,
                StatusCode::OK,
                "round {round}: acknowledged profile {id} is gone"
            );
            assert!(
                body["email"].is_string(),
                "round {round}: profile {id} reads back invalid: {body}"
            );
        }
        // Every stored record decodes: the listing reads them all.
        let (status, page) = get(
            &client,
            format!("{}/v1/hood/profiles?page=1,1000", server.base_url),
            &token,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(page["total"].as_u64().unwrap_or(0) as usize > created.len());
        total_writes = writes;
    }
    // Visible with --nocapture; the CI log prints it.
    println!(
        "crash safety: {rounds} SIGKILLs survived, {total_writes} acknowledged writes all present"
    );
}
