//! Bytes → strict JSON → Hood profile patch → apply → Hood view.
//! Properties: no panic; an accepted patch's plain fields read back as
//! sent, `custom_properties` merged key by key, `lists` de-duplicated; a
//! second application changes nothing more; a patch that the apply step
//! refuses is reported as an error (the store then discards the copy).
#![no_main]

#[path = "common.rs"]
mod common;

use clientele::core::fields::{Declared, View};
use clientele::core::hood::Profile;
use clientele::core::input::parse_json_strictly;
use clientele::surfaces::hood::Hood;
use libfuzzer_sys::fuzz_target;
use serde_json::json;

fn base() -> Profile {
    let body = json!({
        "email": "old@example.com",
        "mobile_phone_number": "+49658245684",
        "full_name": "Old Name",
        "organization_id": "1000",
        "lists": ["1000102"],
        "custom_properties": {"clicker": "1", "plan": "pro"},
        "comment": "before"
    });
    Profile::read_new::<Hood>(&body).expect("the base profile is valid")
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_json_strictly(data) else { return };
    let original = base();
    let Ok(patch) = Profile::read_patch::<Hood>(&body) else {
        assert_eq!(original, base());
        return;
    };
    let mut once = original.clone();
    if patch.clone().apply(&mut once).is_err() {
        // Refused as a whole (e.g. over 100 properties, or no contact left):
        // Records::update then rolls back, so only the original survives.
        return;
    }
    let mut twice = once.clone();
    assert!(patch.apply(&mut twice).is_ok(), "a patch accepted once is accepted again");
    assert_eq!(once, twice, "applying the same patch twice changed more");
    let before = serde_json::to_value(View::<Profile, Hood>::of(&common::record("1000000", original)))
        .expect("serialises");
    let view = serde_json::to_value(View::<Profile, Hood>::of(&common::record("1000000", once)))
        .expect("serialises");
    let Some(sent) = body.as_object() else { return };
    common::assert_plain_fields_read_back(sent, &view, &["email", "full_name", "organization_id", "comment"]);
    if let Some(sent_properties) = sent.get("custom_properties") {
        common::assert_merged(&before["custom_properties"], sent_properties, &view["custom_properties"], "custom_properties");
    }
    if let Some(lists) = sent.get("lists").and_then(|lists| lists.as_array()) {
        let mut expected: Vec<&serde_json::Value> = Vec::new();
        for list in lists {
            if !expected.contains(&list) {
                expected.push(list);
            }
        }
        let read: Vec<&serde_json::Value> = view["lists"].as_array().map(|v| v.iter().collect()).unwrap_or_default();
        assert_eq!(read, expected);
    }
    if sent.get("mobile_phone_number").is_some_and(|value| value.is_null()) {
        assert!(view["country_code"].is_null(), "clearing the number clears its country");
    }
});
