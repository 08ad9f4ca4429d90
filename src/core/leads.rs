//! Lance's lead records: persons (leads), companies, and lead lists that
//! gather persons or companies for a campaign, optionally linked to the
//! ICP they were generated from. The fields follow the vendor's examples
//! (docs.lance.so, entities: lead lists, prospects); what the pages leave
//! open is decided here once (see `docs/leadlists.md`).
//!
//! Persons and companies are the workspace's own records (Lance shares
//! them across organisations; Clientele keeps each workspace apart), and
//! they are searched by field: each keeps normalised [`Document::terms`]
//! beside its body, which prospect search and lead-list generation query.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::{DomainError, FieldError, FieldPath, RecordKind};
use super::fields::{
    Check, Choose, Declared, Dialect, FreeObject, Integer, List, Mode, Record, Rules, Text,
};
use super::icp::{EntityType, Rfc3339};
use super::input::{FreeFormLimits, Reader};
use super::records::{Document, WriteSession};
use super::shape::{self, Shape};
use crate::store::search::{Condition, TermMatch, TermQuery, TermTest};

/// Character bounds of names (a person's first or last name, a company's
/// or a list's name).
pub const NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=255;
/// Character bounds of short text fields (a title, a city, an industry).
pub const SHORT_CHARS: std::ops::RangeInclusive<usize> = 0..=255;
/// Character bounds of URLs.
pub const URL_CHARS: std::ops::RangeInclusive<usize> = 0..=2_048;
/// Character bounds of a company's description and summary.
pub const LONG_CHARS: std::ops::RangeInclusive<usize> = 0..=5_000;
/// How many values a person's list fields (departments, skills, emails, …)
/// may hold.
pub const TAG_ITEMS: std::ops::RangeInclusive<usize> = 0..=100;
/// Character bounds of one such value.
pub const TAG_CHARS: std::ops::RangeInclusive<usize> = 1..=255;
/// How many persons or companies one lead list may hold.
pub const LIST_ITEMS: std::ops::RangeInclusive<usize> = 0..=10_000;
/// Character bounds of one person id in a list.
pub const PERSON_ID_CHARS: std::ops::RangeInclusive<usize> = 1..=128;
/// A company's founding year.
pub const FOUNDED_YEAR: std::ops::RangeInclusive<i64> = 1000..=9999;
/// Bullhorn ids are positive integers.
pub const BULLHORN_ID: std::ops::RangeInclusive<i64> = 1..=i64::MAX;

/// A string holding a UUID; stored in lower-case hyphenated form.
pub struct UuidText;

impl Check for UuidText {
    type Value = String;

    fn read(&self, reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
        let text = reader.string(value, path, 1..=64)?;
        match uuid::Uuid::parse_str(&text) {
            Ok(uuid) => Some(uuid.hyphenated().to_string()),
            Err(_) => {
                reader.error(path, "Invalid uuid");
                None
            }
        }
    }

    fn shape(&self) -> Shape {
        shape::string().format("uuid")
    }
}

crate::view_as_stored! {
    EntityType => shape::one_of(&super::icp::ENTITY_TYPES),
}

/// A person (a lead) as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    #[field(check = Text(NAME_CHARS), required, example = "Jane")]
    pub first_name: String,
    #[field(check = Text(NAME_CHARS), required, example = "Doe")]
    pub last_name: String,
    #[field(check = Text(SHORT_CHARS), example = "VP of Engineering")]
    pub job_title: Option<String>,
    /// e.g. `VP`, `Director`, `C-Suite`.
    #[field(check = Text(SHORT_CHARS))]
    pub seniority: Option<String>,
    #[field(check = List(Text(TAG_CHARS), TAG_ITEMS))]
    pub departments: Vec<String>,
    #[field(check = List(Text(TAG_CHARS), TAG_ITEMS))]
    pub sub_departments: Vec<String>,
    #[field(check = List(Text(TAG_CHARS), TAG_ITEMS))]
    pub functions: Vec<String>,
    #[field(check = List(Text(TAG_CHARS), TAG_ITEMS))]
    pub skills: Vec<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub industry: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub city: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub postal_code: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub country: Option<String>,
    #[field(check = Text(URL_CHARS))]
    pub linkedin_url: Option<String>,
    #[field(check = List(Text(TAG_CHARS), TAG_ITEMS))]
    pub emails: Vec<String>,
    #[field(check = List(Text(TAG_CHARS), TAG_ITEMS))]
    pub phones: Vec<String>,
    /// UUID of the person's current company (a company of the workspace).
    #[field(check = UuidText)]
    pub company_id: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub base_provider_id: Option<String>,
    /// The person's contact id in Bullhorn, if it is in the CRM.
    #[field(check = Integer(BULLHORN_ID))]
    pub bullhorn_id: Option<i64>,
    /// The person's id in another CRM, if it is in one.
    #[field(check = Text(SHORT_CHARS))]
    pub crm_id: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub lead_owner_id: Option<String>,
    /// The CRM contact's fields as last synced (e.g. `status`,
    /// `occupation`, `address.zip`), which an ICP's `crmFilters` test.
    #[field(check = FreeObject(FreeFormLimits::DEFAULT))]
    pub crm: Option<Map<String, Value>>,
}

impl Person {
    /// Whether the person is a contact of the connected CRM.
    pub fn in_crm(&self) -> bool {
        self.bullhorn_id.is_some() || self.crm_id.is_some()
    }
}

impl Rules for Person {}

#[async_trait::async_trait]
impl Document for Person {
    const KIND: RecordKind = RecordKind::Person;
    const SEARCHABLE: bool = true;

    fn terms(&self) -> Vec<(&'static str, String)> {
        let mut terms = Terms::default();
        terms.words("name", &format!("{} {}", self.first_name, self.last_name));
        terms.whole(
            "full_name",
            Some(&format!("{} {}", self.first_name, self.last_name)),
        );
        terms.whole("title", self.job_title.as_deref());
        terms.words("title_word", self.job_title.as_deref().unwrap_or(""));
        terms.whole("seniority", self.seniority.as_deref());
        for department in self
            .departments
            .iter()
            .chain(&self.sub_departments)
            .chain(&self.functions)
        {
            terms.whole("department", Some(department));
        }
        for skill in &self.skills {
            terms.whole("skill", Some(skill));
            terms.words("skill_word", skill);
        }
        for place in [&self.city, &self.country, &self.postal_code] {
            terms.whole("location", place.as_deref());
        }
        terms.whole("industry", self.industry.as_deref());
        terms.whole("linkedin", self.linkedin_url.as_deref());
        if let Some(company) = &self.company_id {
            terms.add("company", company.clone());
        }
        for text in self
            .job_title
            .iter()
            .chain(&self.skills)
            .chain(&self.departments)
            .chain(&self.functions)
            .chain(&self.industry)
        {
            terms.words("keyword", text);
        }
        terms.into_vec()
    }

    async fn check_relations(
        &self,
        _id: &str,
        previous: Option<&Self>,
        session: &mut WriteSession,
    ) -> Result<(), DomainError> {
        let Some(company) = &self.company_id else {
            return Ok(());
        };
        if previous.is_some_and(|previous| previous.company_id.as_ref() == Some(company)) {
            return Ok(());
        }
        // Only whether it exists: a company's later delete leaves its
        // persons' companyId anyway, so no lock on it is needed (taking one
        // serialised every insert of its persons on PostgreSQL).
        if session
            .existing_ids::<Company>(std::slice::from_ref(company))
            .await?
            .is_empty()
        {
            return Err(DomainError::invalid(
                FieldPath::root().key("companyId"),
                format!("Company {company} not found"),
            ));
        }
        Ok(())
    }
}

impl crate::core::import::Importable for Person {}

/// A company as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[serde(rename_all = "camelCase")]
pub struct Company {
    #[field(check = Text(NAME_CHARS), required, example = "Acme Corporation")]
    pub name: String,
    #[field(check = Text(SHORT_CHARS))]
    pub legal_name: Option<String>,
    #[field(check = Text(LONG_CHARS))]
    pub description: Option<String>,
    #[field(check = Text(LONG_CHARS))]
    pub summary: Option<String>,
    #[field(check = Text(SHORT_CHARS), example = "Software")]
    pub industry: Option<String>,
    /// A size range, e.g. `51-200`.
    #[field(check = Text(SHORT_CHARS), example = "51-200")]
    pub headcount: Option<String>,
    #[field(check = Text(SHORT_CHARS), example = "acme.com")]
    pub domain: Option<String>,
    #[field(check = Text(URL_CHARS))]
    pub website_url: Option<String>,
    #[field(check = Text(URL_CHARS))]
    pub linkedin_url: Option<String>,
    #[field(check = Text(URL_CHARS))]
    pub logo_url: Option<String>,
    #[field(check = List(Text(TAG_CHARS), TAG_ITEMS))]
    pub phones: Vec<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub city: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub postal_code: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub country: Option<String>,
    #[field(check = Integer(FOUNDED_YEAR))]
    pub founded_year: Option<i64>,
    /// A revenue range, e.g. `$10M - $50M`.
    #[field(check = Text(SHORT_CHARS))]
    pub revenue: Option<String>,
    #[field(check = Text(SHORT_CHARS))]
    pub base_provider_id: Option<String>,
    #[field(check = Integer(BULLHORN_ID))]
    pub bullhorn_id: Option<i64>,
    #[field(check = Text(SHORT_CHARS))]
    pub crm_id: Option<String>,
}

impl Rules for Company {}

#[async_trait::async_trait]
impl Document for Company {
    const KIND: RecordKind = RecordKind::Company;
    const SEARCHABLE: bool = true;

    fn terms(&self) -> Vec<(&'static str, String)> {
        let mut terms = Terms::default();
        terms.whole("name", Some(&self.name));
        terms.whole("name", self.legal_name.as_deref());
        terms.words("name_word", &self.name);
        terms.whole("domain", self.domain.as_deref());
        terms.whole("industry", self.industry.as_deref());
        terms.whole("headcount", self.headcount.as_deref());
        for place in [&self.city, &self.country, &self.postal_code] {
            terms.whole("location", place.as_deref());
        }
        terms.whole("linkedin", self.linkedin_url.as_deref());
        terms.whole("linkedin", self.website_url.as_deref());
        for text in std::iter::once(&self.name).chain(&self.industry) {
            terms.words("keyword", text);
        }
        terms.into_vec()
    }
}

impl crate::core::import::Importable for Company {}

/// A lead list as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[serde(rename_all = "camelCase")]
pub struct LeadList {
    #[field(check = Text(NAME_CHARS), required, example = "Q1 2024 Tech Startups")]
    pub name: String,
    /// Whether the list holds persons (`personIds`) or companies
    /// (`companyIds`); set on creation, then immutable.
    #[serde(rename = "type")]
    #[field(check = Choose::<EntityType>::new(), default = EntityType::Person)]
    pub list_type: EntityType,
    /// The ICP the list belongs to (one the caller can see), or null.
    #[field(check = UuidText)]
    pub icp_id: Option<String>,
    /// When the campaign starts, RFC 3339.
    #[field(check = Rfc3339, required)]
    pub start_date: DateTime<Utc>,
    /// When the campaign ends, RFC 3339; not before `startDate`.
    #[field(check = Rfc3339, required)]
    pub end_date: DateTime<Utc>,
    /// Ids of the workspace's persons (person lists only); a set.
    #[field(check = List(Text(PERSON_ID_CHARS), LIST_ITEMS), required)]
    pub person_ids: Vec<String>,
    /// UUIDs of the workspace's companies (company lists only); a set.
    #[field(check = List(UuidText, LIST_ITEMS))]
    pub company_ids: Vec<String>,
    /// Users with access to the list; the creator is always added.
    #[field(check = List(Text(super::icp::USER_ID_CHARS), super::icp::USER_IDS_ITEMS))]
    pub user_ids: Vec<String>,
}

impl LeadList {
    /// Applies a PATCH: `type` may be sent, but only as it is (a client
    /// sending back what it read); changing it is refused at its path.
    pub fn apply_patch_keeping_type(&mut self, patch: LeadListPatch) -> Result<(), DomainError> {
        if let Some(wanted) = patch.list_type
            && wanted != self.list_type
        {
            return Err(DomainError::invalid(
                FieldPath::root().key("type"),
                format!(
                    "The type of a lead list cannot be changed (this list's type is {})",
                    match self.list_type {
                        EntityType::Person => "person",
                        EntityType::Company => "company",
                    }
                ),
            ));
        }
        patch.apply(self)
    }

    /// The list as its creator made it: the creator is always among its
    /// users *(vendor)*.
    pub fn created_by(mut self, creator: &Principal) -> Self {
        self.user_ids.push(creator.user_id.clone());
        self.normalize();
        self
    }

    /// The id lists are sets: keep the first occurrence of each, in order.
    fn normalize(&mut self) {
        for ids in [
            &mut self.user_ids,
            &mut self.person_ids,
            &mut self.company_ids,
        ] {
            let mut seen = HashSet::new();
            ids.retain(|id| seen.insert(id.clone()));
        }
    }
}

impl Rules for LeadList {
    fn after_apply(&mut self, _mode: Mode) -> Result<(), Vec<FieldError>> {
        self.normalize();
        let mut errors = Vec::new();
        match self.list_type {
            EntityType::Person if !self.company_ids.is_empty() => errors.push(FieldError {
                path: FieldPath::root().key("companyIds"),
                message: "Only company lists hold companyIds; this list's type is person".into(),
            }),
            EntityType::Company if !self.person_ids.is_empty() => errors.push(FieldError {
                path: FieldPath::root().key("personIds"),
                message: "Only person lists hold personIds; this list's type is company".into(),
            }),
            _ => {}
        }
        if self.end_date < self.start_date {
            errors.push(FieldError {
                path: FieldPath::root().key("endDate"),
                message: "Must not be before startDate".into(),
            });
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// The lists linked to the ICP `icp`, by id after `after`, a page of
/// `limit`.
pub fn lists_of_icp(icp: &str, after: Option<String>, limit: u64) -> TermQuery {
    TermQuery {
        condition: Some(Condition::Test(TermTest {
            via: None,
            field: "icp",
            matches: vec![TermMatch::Exact(icp.to_owned())],
        })),
        after,
        offset: 0,
        limit,
    }
}

#[async_trait::async_trait]
impl Document for LeadList {
    const KIND: RecordKind = RecordKind::LeadList;
    const PER_RECORD_ACCESS: bool = true;
    /// Indexed by ICP, for the rules that find an ICP's lists.
    const SEARCHABLE: bool = true;

    fn terms(&self) -> Vec<(&'static str, String)> {
        self.icp_id.iter().map(|icp| ("icp", icp.clone())).collect()
    }

    fn accessible_by(&self, principal: &Principal) -> bool {
        self.user_ids.contains(&principal.user_id)
    }

    async fn check_relations(
        &self,
        _id: &str,
        previous: Option<&Self>,
        session: &mut WriteSession,
    ) -> Result<(), DomainError> {
        let mut errors = Vec::new();
        if let Some(icp) = &self.icp_id
            && previous.is_none_or(|previous| previous.icp_id.as_ref() != Some(icp))
        {
            let visible = match session.get::<super::icp::Icp>(icp).await? {
                Some(record) => {
                    let actor = session.actor();
                    actor.is_admin() || record.data.accessible_by(actor)
                }
                None => false,
            };
            if !visible {
                errors.push(FieldError {
                    path: FieldPath::root().key("icpId"),
                    message: format!("ICP {icp} not found"),
                });
            }
        }
        let before = |ids: fn(&Self) -> &Vec<String>| -> HashSet<String> {
            previous
                .map(|previous| ids(previous).iter().cloned().collect())
                .unwrap_or_default()
        };
        let added = |ids: &[String], before: &HashSet<String>| -> Vec<String> {
            ids.iter()
                .filter(|id| !before.contains(*id))
                .cloned()
                .collect()
        };
        let persons_before = before(|list| &list.person_ids);
        let new_persons = added(&self.person_ids, &persons_before);
        if !new_persons.is_empty() {
            let found = session.existing_ids::<Person>(&new_persons).await?;
            for (index, id) in self.person_ids.iter().enumerate() {
                if !persons_before.contains(id) && !found.contains(id) {
                    errors.push(FieldError {
                        path: FieldPath::root().key("personIds").index(index),
                        message: format!("Person {id} not found"),
                    });
                }
            }
        }
        let companies_before = before(|list| &list.company_ids);
        let new_companies = added(&self.company_ids, &companies_before);
        if !new_companies.is_empty() {
            let found = session.existing_ids::<Company>(&new_companies).await?;
            for (index, id) in self.company_ids.iter().enumerate() {
                if !companies_before.contains(id) && !found.contains(id) {
                    errors.push(FieldError {
                        path: FieldPath::root().key("companyIds").index(index),
                        message: format!("Company {id} not found"),
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(DomainError::Invalid(errors))
        }
    }
}

/// Reads `{"companyIds": [...]}` of add-companies: at least one UUID.
pub fn read_company_ids(body: &Value) -> Result<Vec<String>, DomainError> {
    let mut reader = Reader::new();
    let path = FieldPath::root();
    let ids = reader
        .object(body, &path, &["companyIds"])
        .and_then(|fields| {
            reader.required(&fields, "companyIds", |reader, value, path| {
                List(UuidText, 1..=*LIST_ITEMS.end()).read(reader, value, path)
            })
        });
    match ids {
        Some(ids) if !reader.has_errors() => Ok(ids),
        _ => Err(reader.into_error()),
    }
}

/// The shape of add-companies' body.
pub fn company_ids_shape() -> Shape {
    shape::closed_object().property(
        "companyIds",
        List(UuidText, 1..=*LIST_ITEMS.end())
            .shape()
            .describe("UUIDs of the workspace's companies; duplicates and companies already in the list are skipped"),
        true,
    )
}

/// The persons a create body of `Person` describes, read in full (every
/// error with its path); `id` may name the person (a UUID).
pub fn read_prospect<D: Dialect>(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<(Option<String>, Person)> {
    let Value::Object(map) = value else {
        reader.object(value, path, &[]);
        return None;
    };
    let id = match map.get("id") {
        None | Some(Value::Null) => Some(None),
        Some(id) => UuidText.read(reader, id, &path.key("id")).map(Some),
    };
    let mut body = map.clone();
    body.remove("id");
    let person = match Person::read_new::<D>(&Value::Object(body)) {
        Ok(person) => Some(person),
        Err(DomainError::Invalid(errors)) => {
            for error in errors {
                reader.error(&path.join(&error.path), error.message);
            }
            None
        }
        Err(other) => {
            reader.error(path, other.to_string());
            None
        }
    };
    Some((id?, person?))
}

/// Normalised search text: lower case, trimmed, inner white space
/// collapsed to one space.
pub fn normalize(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of a text, normalised: runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A record's search terms, as a set.
#[derive(Default)]
struct Terms(BTreeSet<(&'static str, String)>);

impl Terms {
    fn add(&mut self, field: &'static str, term: String) {
        // Index keys have a size limit; longer values are not searched.
        if !term.is_empty() && term.len() <= 512 {
            self.0.insert((field, term));
        }
    }

    fn whole(&mut self, field: &'static str, text: Option<&str>) {
        if let Some(text) = text {
            self.add(field, normalize(text));
        }
    }

    fn words(&mut self, field: &'static str, text: &str) {
        for word in words(text) {
            self.add(field, word);
        }
    }

    fn into_vec(self) -> Vec<(&'static str, String)> {
        self.0.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TestDialect;

    impl Dialect for TestDialect {
        const ID_KEY: &'static str = "id";
        const TIME_KEYS: [&'static str; 2] = ["createdAt", "updatedAt"];

        fn serialize_time<S: serde::Serializer>(
            time: &DateTime<Utc>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            serializer.serialize_str(&time.to_rfc3339())
        }

        fn id_shape() -> Shape {
            shape::string()
        }

        fn time_shape() -> Shape {
            shape::string()
        }
    }

    #[test]
    fn text_is_normalised_and_split_into_words() {
        assert_eq!(normalize("  VP   of Engineering "), "vp of engineering");
        assert_eq!(
            words("C-Suite / Head of R&D"),
            ["c", "suite", "head", "of", "r", "d"]
        );
    }

    #[test]
    fn a_person_indexes_its_searchable_fields() {
        let person = Person::read_new::<TestDialect>(&serde_json::json!({
            "firstName": "Jane", "lastName": "Doe", "jobTitle": "VP of Engineering",
            "seniority": "VP", "skills": ["Rust"], "country": "United States",
            "companyId": "660E8400-E29B-41D4-A716-446655440001"
        }))
        .expect("valid");
        assert_eq!(
            person.company_id.as_deref(),
            Some("660e8400-e29b-41d4-a716-446655440001")
        );
        let terms = person.terms();
        for expected in [
            ("title", "vp of engineering"),
            ("title_word", "engineering"),
            ("seniority", "vp"),
            ("skill", "rust"),
            ("location", "united states"),
            ("company", "660e8400-e29b-41d4-a716-446655440001"),
            ("name", "jane"),
            ("full_name", "jane doe"),
        ] {
            assert!(
                terms.contains(&(expected.0, expected.1.to_owned())),
                "{expected:?} in {terms:?}"
            );
        }
    }

    #[test]
    fn a_list_holds_only_the_ids_of_its_type() {
        let body = serde_json::json!({
            "name": "L", "type": "company", "icpId": null,
            "startDate": "2024-01-01T00:00:00Z", "endDate": "2023-01-01T00:00:00Z",
            "personIds": ["p1"], "companyIds": []
        });
        let Err(DomainError::Invalid(errors)) = LeadList::read_new::<TestDialect>(&body) else {
            panic!("refused");
        };
        let paths: Vec<String> = errors.iter().map(|error| error.path.to_string()).collect();
        assert_eq!(paths, ["personIds", "endDate"], "{errors:?}");
    }
}
