//! Bytes → strict JSON → ClientSuccess client patch → apply → client view.
//! Properties: no panic; an accepted patch's plain fields read back as
//! sent, `custom` merged key by key; a second application changes nothing
//! more.
#![no_main]

#[path = "common.rs"]
mod common;

use clientele::core::client::Client;
use clientele::core::fields::{Declared, View};
use clientele::core::input::parse_json_strictly;
use clientele::surfaces::clientsuccess::ClientSuccess;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

/// Stored exactly as sent when accepted.
const PLAIN: [&str; 27] = [
    "name", "siteUrl", "logoUrl", "status", "active", "inceptionDate", "terminatedDate",
    "street", "city", "state", "zip", "country", "timezone", "externalId",
    "salesforceAccountId", "zendeskId", "freshdeskId", "usageId", "stripeId",
    "externalStatusId", "npsScore", "note", "createdByEmployeeId", "modifiedByEmployeeId",
    "managedByEmployeeId", "assignedSalesRepId", "assignedSalesRep",
];

fn base() -> Client {
    let body = json!({
        "name": "Acme", "status": "ACTIVE", "active": true,
        "timezone": "Europe/Berlin", "npsScore": 10, "note": "before",
        "custom": {"tier": "gold", "seats": 10}
    });
    Client::read_new::<ClientSuccess>(&body).expect("the base client is valid")
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json_strictly(data) else { return };
    let original = base();
    let Ok(patch) = Client::read_patch::<ClientSuccess>(&body) else {
        assert_eq!(original, base());
        return;
    };
    let mut once = original.clone();
    if patch.clone().apply(&mut once).is_err() {
        return;
    }
    let mut twice = once.clone();
    assert!(patch.apply(&mut twice).is_ok(), "a patch accepted once is accepted again");
    assert_eq!(once, twice, "applying the same patch twice changed more");
    let uuid = "550e8400-e29b-41d4-a716-446655440000";
    let before = serde_json::to_value(View::<Client, ClientSuccess>::of(&common::record(uuid, original)))
        .expect("serialises");
    let view = serde_json::to_value(View::<Client, ClientSuccess>::of(&common::record(uuid, once)))
        .expect("serialises");
    let Some(sent) = body.as_object() else { return };
    common::assert_plain_fields_read_back(sent, &view, &PLAIN);
    match sent.get("custom") {
        Some(serde_json::Value::Null) => assert_eq!(view["custom"], json!({})),
        Some(custom) => common::assert_merged(&before["custom"], custom, &view["custom"], "custom"),
        None => assert_eq!(view["custom"], before["custom"]),
    }
});
