//! Ideal Customer Profiles: the record, its nested criteria, the rules each
//! value must satisfy, and how a partial update applies. The limits and
//! defaults here are the one place each ICP decision is made; the Lance
//! surface reads request bodies into these types.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::RecordKind;
use super::patch::Patch;
use super::records::Document;

/// Character bounds of `name`.
pub const NAME_CHARS: std::ops::RangeInclusive<usize> = 1..=255;
/// Character bounds of `description`.
pub const DESCRIPTION_CHARS: std::ops::RangeInclusive<usize> = 0..=5_000;
/// How many users an ICP may list.
pub const USER_IDS_ITEMS: std::ops::RangeInclusive<usize> = 0..=1_000;
/// Character bounds of one user id.
pub const USER_ID_CHARS: std::ops::RangeInclusive<usize> = 1..=128;
/// `leadsPerList` range, and its default *(vendor)*.
pub const LEADS_PER_LIST: std::ops::RangeInclusive<i64> = 1..=10_000;
pub const DEFAULT_LEADS_PER_LIST: i64 = 10;
/// At least one lead provider criterion *(vendor)*.
pub const LEAD_PROVIDER_CRITERIA_ITEMS: std::ops::RangeInclusive<usize> = 1..=50;
pub const CUSTOM_FILTER_CRITERIA_ITEMS: std::ops::RangeInclusive<usize> = 0..=50;
/// Prompts given to the AI and website filters.
pub const PROMPT_CHARS: std::ops::RangeInclusive<usize> = 1..=10_000;
/// Optional prompts of the webscraping filter (may be empty).
pub const OPTIONAL_PROMPT_CHARS: std::ops::RangeInclusive<usize> = 0..=10_000;
/// Provider names of the website and webscraping filters.
pub const FILTER_PROVIDER_CHARS: std::ops::RangeInclusive<usize> = 1..=100;
pub const SEARCH_STRINGS_ITEMS: std::ops::RangeInclusive<usize> = 0..=100;
pub const SEARCH_STRING_CHARS: std::ops::RangeInclusive<usize> = 1..=500;
/// Field paths such as `company.headcount`.
pub const FIELD_PATH_CHARS: std::ops::RangeInclusive<usize> = 1..=200;
pub const REGEX_CHARS: std::ops::RangeInclusive<usize> = 1..=1_000;
/// Compiled size a `matchFieldWithRegex` pattern may reach; bigger ones
/// (e.g. `\w{1000}{1000}`) are refused rather than allowed to eat memory.
pub const REGEX_COMPILED_BYTES: usize = 256 * 1024;
pub const MAX_PEOPLE_PER_COMPANY: std::ops::RangeInclusive<i64> = 1..=i64::MAX;
pub const MIN_DAYS_UNTIL_REUSE: std::ops::RangeInclusive<i64> = 0..=i64::MAX;
pub const MAX_PERCENT_FROM_CRM: std::ops::RangeInclusive<f64> = 0.0..=100.0;
pub const CRM_FILTERS_ITEMS: std::ops::RangeInclusive<usize> = 0..=50;
pub const CRM_TEXT_CHARS: std::ops::RangeInclusive<usize> = 0..=2_000;
pub const CRM_VALUE_CHARS: std::ops::RangeInclusive<usize> = 0..=1_000;
pub const CRM_IN_ITEMS: std::ops::RangeInclusive<usize> = 1..=500;

/// The only lead provider the vendor documents.
pub const LEAD_PROVIDERS: [&str; 1] = ["baseProvider"];
/// The only CRM the vendor documents.
pub const CRM_PROVIDERS: [&str; 1] = ["bullhorn"];
pub const ENTITY_TYPES: [&str; 2] = ["person", "company"];
pub const CUSTOM_FILTER_TYPES: [&str; 7] = [
    "website",
    "webscraping",
    "ai",
    "maxPeoplePerCompany",
    "maxPercentFromCRM",
    "minDaysUntilReuse",
    "matchFieldWithRegex",
];
pub const CRM_MATCH_MODES: [&str; 3] = ["equals", "in", "startsWith"];
pub const DEFAULT_WEBSITE_PROVIDER: &str = "browserUse";
pub const DEFAULT_WEBSCRAPING_PROVIDER: &str = "firecrawl";

/// An Ideal Customer Profile as stored (metadata lives in the record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Icp {
    pub name: String,
    pub description: Option<String>,
    pub user_ids: Vec<String>,
    pub leads_per_list: i64,
    pub active_until: Option<DateTime<Utc>>,
    pub lead_provider_criteria: Vec<LeadProviderCriterion>,
    pub custom_filter_criteria: Vec<CustomFilter>,
    pub crm_filters: Option<CrmFilters>,
}

/// Whether a search or filter concerns people or companies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EntityType {
    Person,
    Company,
}

impl EntityType {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "person" => Some(EntityType::Person),
            "company" => Some(EntityType::Company),
            _ => None,
        }
    }
}

/// One search a lead provider runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadProviderCriterion {
    pub provider: String,
    /// Defaults to `person` *(vendor: legacy behaviour)*.
    #[serde(rename = "type")]
    pub search_type: EntityType,
    /// Provider-specific filters, stored as given within the size bounds.
    pub filters: Map<String, Value>,
}

/// A rule applied to leads after retrieval, tagged by `type`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum CustomFilter {
    Website {
        provider: String,
        prompt: String,
    },
    Webscraping {
        provider: String,
        extraction_prompt: Option<String>,
        page_finding_prompt: Option<String>,
        include_search_strings: Option<Vec<String>>,
        exclude_search_strings: Option<Vec<String>>,
    },
    Ai {
        entity_type: EntityType,
        prompt: String,
    },
    MaxPeoplePerCompany {
        value: i64,
    },
    #[serde(rename = "maxPercentFromCRM")]
    MaxPercentFromCrm {
        value: f64,
    },
    MinDaysUntilReuse {
        value: i64,
    },
    MatchFieldWithRegex {
        field: String,
        regex: String,
    },
}

/// Which contacts of the connected CRM count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmFilters {
    pub provider: String,
    pub text_search: Option<String>,
    pub query: Option<String>,
    pub filters: Vec<CrmFilter>,
}

/// One structured CRM condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CrmFilter {
    pub path: String,
    pub condition: CrmCondition,
    pub exclude: bool,
}

/// A CRM match mode with the value kind that mode takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", content = "value", rename_all = "camelCase")]
pub enum CrmCondition {
    Equals(String),
    In(Vec<String>),
    StartsWith(String),
}

/// Checks that a `matchFieldWithRegex` pattern compiles within the size
/// bound; the error text says why not.
pub fn check_regex(pattern: &str) -> Result<(), String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_COMPILED_BYTES)
        .dfa_size_limit(REGEX_COMPILED_BYTES)
        .build()
        .map(|_| ())
        .map_err(|error| match error {
            regex::Error::CompiledTooBig(_) => format!(
                "Invalid regular expression: compiles to more than {REGEX_COMPILED_BYTES} bytes"
            ),
            other => format!("Invalid regular expression: {other}"),
        })
}

/// The fields of a new ICP, as read from a create request.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIcp {
    pub name: String,
    pub description: Option<String>,
    pub user_ids: Vec<String>,
    pub leads_per_list: Option<i64>,
    pub active_until: Option<DateTime<Utc>>,
    pub lead_provider_criteria: Vec<LeadProviderCriterion>,
    pub custom_filter_criteria: Vec<CustomFilter>,
    pub crm_filters: Option<CrmFilters>,
}

impl Icp {
    /// A new ICP created by `creator`, who is always among its users
    /// *(vendor)*.
    pub fn create(new: NewIcp, creator: &Principal) -> Self {
        let mut icp = Icp {
            name: new.name,
            description: new.description,
            user_ids: new.user_ids,
            leads_per_list: new.leads_per_list.unwrap_or(DEFAULT_LEADS_PER_LIST),
            active_until: new.active_until,
            lead_provider_criteria: new.lead_provider_criteria,
            custom_filter_criteria: new.custom_filter_criteria,
            crm_filters: new.crm_filters,
        };
        icp.user_ids.push(creator.user_id.clone());
        icp.normalize();
        icp
    }

    /// `userIds` is a set: keep the first occurrence of each id, in order.
    fn normalize(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.user_ids.retain(|user| seen.insert(user.clone()));
    }
}

#[async_trait::async_trait]
impl Document for Icp {
    const KIND: RecordKind = RecordKind::Icp;
    const PER_RECORD_ACCESS: bool = true;

    fn accessible_by(&self, principal: &Principal) -> bool {
        self.user_ids.contains(&principal.user_id)
    }
}

/// A partial update of an ICP. Only `description`, `activeUntil` and
/// `crmFilters` can be cleared; arrays and `crmFilters` are replaced whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IcpPatch {
    pub name: Patch<String>,
    pub description: Patch<String>,
    pub user_ids: Patch<Vec<String>>,
    pub leads_per_list: Patch<i64>,
    pub active_until: Patch<DateTime<Utc>>,
    pub lead_provider_criteria: Patch<Vec<LeadProviderCriterion>>,
    pub custom_filter_criteria: Patch<Vec<CustomFilter>>,
    pub crm_filters: Patch<CrmFilters>,
}

impl IcpPatch {
    pub fn apply(self, icp: &mut Icp) {
        self.name.apply_to(&mut icp.name);
        self.description.apply_to_option(&mut icp.description);
        self.user_ids.apply_to(&mut icp.user_ids);
        self.leads_per_list.apply_to(&mut icp.leads_per_list);
        self.active_until.apply_to_option(&mut icp.active_until);
        self.lead_provider_criteria
            .apply_to(&mut icp.lead_provider_criteria);
        self.custom_filter_criteria
            .apply_to(&mut icp.custom_filter_criteria);
        self.crm_filters.apply_to_option(&mut icp.crm_filters);
        icp.normalize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::auth::{Role, WorkspaceId};

    fn creator() -> Principal {
        Principal {
            workspace: WorkspaceId::new("w"),
            user_id: "user_me".into(),
            role: Role::Member,
            key_id: None,
            request_id: String::new(),
        }
    }

    fn new_icp() -> NewIcp {
        NewIcp {
            name: "n".into(),
            description: None,
            user_ids: vec!["user_a".into(), "user_me".into()],
            leads_per_list: None,
            active_until: None,
            lead_provider_criteria: vec![],
            custom_filter_criteria: vec![],
            crm_filters: None,
        }
    }

    #[test]
    fn creator_is_added_once_and_defaults_apply() {
        let icp = Icp::create(new_icp(), &creator());
        assert_eq!(
            icp.user_ids,
            vec!["user_a".to_owned(), "user_me".to_owned()]
        );
        assert_eq!(icp.leads_per_list, DEFAULT_LEADS_PER_LIST);
        assert!(icp.accessible_by(&creator()));
    }

    #[test]
    fn patch_touches_only_named_fields() {
        let mut icp = Icp::create(new_icp(), &creator());
        icp.description = Some("d".into());
        let before = icp.clone();
        IcpPatch {
            name: Patch::Value("m".into()),
            description: Patch::Null,
            ..IcpPatch::default()
        }
        .apply(&mut icp);
        assert_eq!(icp.name, "m");
        assert_eq!(icp.description, None);
        assert_eq!(icp.user_ids, before.user_ids);
        assert_eq!(icp.leads_per_list, before.leads_per_list);
    }

    #[test]
    fn stored_custom_filters_use_the_vendor_tags() {
        let filter = CustomFilter::MaxPercentFromCrm { value: 20.0 };
        assert_eq!(
            serde_json::to_value(&filter).ok(),
            Some(serde_json::json!({"type": "maxPercentFromCRM", "value": 20.0}))
        );
    }

    #[test]
    fn regexes_must_compile_within_bounds() {
        assert!(check_regex("^CTO|VP").is_ok());
        assert!(check_regex("(unclosed").is_err());
        let too_big = check_regex(r"\w{1000}{1000}").err().unwrap_or_default();
        assert!(too_big.contains("compiles to more than"), "{too_big}");
    }
}
