//! Bytes → strict JSON → ICP patch → apply → Lance view. Properties: no
//! panic; an accepted patch's plain fields read back as sent; applying it
//! twice changes nothing more (idempotent); a rejected body leaves the ICP
//! as it was.
#![no_main]

#[path = "common.rs"]
mod common;

use clientele::core::auth::{Principal, Role, WorkspaceId};
use clientele::core::fields::{Declared, View};
use clientele::core::icp::Icp;
use clientele::core::input::parse_json_strictly;
use clientele::surfaces::lance::Lance;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn base() -> Icp {
    let body = json!({
        "name": "Enterprise Tech Leaders",
        "description": "C-level leaders",
        "userIds": ["user_abc123", "user_def456"],
        "leadsPerList": 10,
        "activeUntil": "2024-12-31T23:59:59.000Z",
        "leadProviderCriteria": [{"provider": "baseProvider", "type": "person", "filters": {"job_titles": ["CTO"]}}],
        "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}]
    });
    let creator = Principal {
        workspace: WorkspaceId::new("fuzz"),
        user_id: "user_abc123".into(),
        role: Role::Member,
        key_id: None,
        request_id: String::new(),
        client_request_id: None,
    };
    Icp::read_new::<Lance>(&body).expect("the base ICP is valid").created_by(&creator)
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json_strictly(data) else { return };
    let original = base();
    let Ok(patch) = Icp::read_patch::<Lance>(&body) else {
        // Rejected: nothing is applied; the ICP is untouched.
        assert_eq!(original, base());
        return;
    };
    let mut once = original.clone();
    patch.clone().apply(&mut once).expect("an accepted ICP patch applies");
    let mut twice = once.clone();
    patch.apply(&mut twice).expect("and applies again");
    assert_eq!(once, twice, "applying the same patch twice changed more");
    let view = serde_json::to_value(View::<Icp, Lance>::of(&common::record(
        "550e8400-e29b-41d4-a716-446655440000",
        once,
    )))
    .expect("the view serialises");
    if let Some(sent) = body.as_object() {
        common::assert_plain_fields_read_back(sent, &view, &["name", "description", "leadsPerList"]);
        for key in ["activeUntil", "crmFilters"] {
            if sent.get(key).is_some_and(|value| value.is_null()) {
                assert!(view[key].is_null(), "{key} was cleared but reads back {}", view[key]);
            }
        }
        if let Some(users) = sent.get("userIds").and_then(|users| users.as_array()) {
            let mut expected: Vec<&serde_json::Value> = Vec::new();
            for user in users {
                if !expected.contains(&user) {
                    expected.push(user);
                }
            }
            let read: Vec<&serde_json::Value> = view["userIds"].as_array().map(|v| v.iter().collect()).unwrap_or_default();
            assert_eq!(read, expected, "userIds read back de-duplicated in order");
        }
    }
});
