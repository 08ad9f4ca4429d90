//! Lance's wire format for ICPs: the response views (with their OpenAPI
//! schemas) and the conversion of request bodies into the core's ICP types,
//! reporting every invalid field with its path.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    KnownFormat, ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type,
};

use crate::core::error::{DomainError, FieldPath};
use crate::core::icp::{
    self, CrmCondition, CrmFilter, CrmFilters, CustomFilter, EntityType, Icp, IcpPatch,
    LeadProviderCriterion, NewIcp,
};
use crate::core::input::{FreeFormLimits, Nullable, Reader};
use crate::core::records::Record;
use crate::surfaces::schema;

/// ISO 8601 in UTC with milliseconds, as Lance writes timestamps.
pub fn timestamp(time: &DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An ICP as Lance returns it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IcpView {
    /// UUID of the ICP.
    #[schema(format = Uuid)]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// ISO 8601 UTC with milliseconds.
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Clerk user ids with access to the ICP.
    pub user_ids: Vec<String>,
    pub leads_per_list: i64,
    #[schema(format = DateTime)]
    pub active_until: Option<String>,
    pub lead_provider_criteria: Vec<LeadProviderCriterionView>,
    pub custom_filter_criteria: Vec<CustomFilterView>,
    pub crm_filters: Option<CrmFiltersView>,
}

/// A lead provider search.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeadProviderCriterionView {
    /// `baseProvider`.
    pub provider: String,
    /// `person` or `company`; defaults to `person`.
    #[serde(rename = "type")]
    pub search_type: String,
    /// Provider-specific filters.
    pub filters: Map<String, Value>,
}

/// A custom filtering rule, tagged by `type`.
#[derive(Debug, Serialize, ToSchema)]
// Multi-word fields are renamed one by one: utoipa ignores serde's
// `rename_all_fields`, and the document must name what is sent.
#[serde(tag = "type", rename_all = "camelCase")]
pub enum CustomFilterView {
    Website {
        provider: String,
        prompt: String,
    },
    Webscraping {
        provider: String,
        #[serde(rename = "extractionPrompt")]
        extraction_prompt: Option<String>,
        #[serde(rename = "pageFindingPrompt")]
        page_finding_prompt: Option<String>,
        #[serde(rename = "includeSearchStrings")]
        include_search_strings: Option<Vec<String>>,
        #[serde(rename = "excludeSearchStrings")]
        exclude_search_strings: Option<Vec<String>>,
    },
    Ai {
        #[serde(rename = "entityType")]
        entity_type: String,
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

/// The CRM filter configuration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrmFiltersView {
    /// `bullhorn`.
    pub provider: String,
    pub text_search: Option<String>,
    pub query: Option<String>,
    pub filters: Vec<CrmFilterView>,
}

/// One CRM condition.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrmFilterView {
    pub path: String,
    /// `equals`, `in` or `startsWith`.
    pub mode: String,
    /// A string for `equals`/`startsWith`, an array for `in`.
    pub value: CrmValueView,
    pub exclude: bool,
}

/// A CRM condition's value.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CrmValueView {
    One(String),
    Many(Vec<String>),
}

/// The body of `POST /api/v1/entities/icps`; its schema is built from the
/// bounds the reader checks (see [`icp_body_schema`]).
pub struct CreateIcpRequest;

/// The body of `PATCH /api/v1/entities/icps/{id}`: every field optional;
/// `null` clears `description`, `activeUntil` and `crmFilters`.
pub struct UpdateIcpRequest;

impl utoipa::PartialSchema for CreateIcpRequest {
    fn schema() -> RefOr<Schema> {
        icp_body_schema(true)
            .description(Some(
                "The body of `POST /api/v1/entities/icps`. The creator is always added to `userIds`.",
            ))
            .into()
    }
}

impl ToSchema for CreateIcpRequest {}

impl utoipa::PartialSchema for UpdateIcpRequest {
    fn schema() -> RefOr<Schema> {
        icp_body_schema(false)
            .description(Some(
                "The body of `PATCH /api/v1/entities/icps/{id}`: only the fields sent change; `null` clears `description`, `activeUntil` and `crmFilters`.",
            ))
            .into()
    }
}

impl ToSchema for UpdateIcpRequest {}

/// The fields of an ICP body, as [`read_new_icp`] and [`read_icp_patch`]
/// read them: the same nullability in both, `name` and
/// `leadProviderCriteria` required on create.
fn icp_body_schema(create: bool) -> ObjectBuilder {
    let body = schema::closed_object()
        .property("name", schema::text(icp::NAME_CHARS))
        .property(
            "description",
            schema::nullable(schema::text(icp::DESCRIPTION_CHARS)),
        )
        .property(
            "userIds",
            schema::array(schema::text(icp::USER_ID_CHARS), icp::USER_IDS_ITEMS)
                .description(Some("Clerk user ids with access to the ICP")),
        )
        .property(
            "leadsPerList",
            schema::integer(icp::LEADS_PER_LIST)
                .description(Some(format!("Default {}", icp::DEFAULT_LEADS_PER_LIST))),
        )
        .property(
            "activeUntil",
            schema::nullable(
                schema::text(1..=64)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("RFC 3339, e.g. 2024-12-31T23:59:59.000Z")),
            ),
        )
        .property(
            "leadProviderCriteria",
            schema::array(
                lead_provider_criterion_schema(),
                icp::LEAD_PROVIDER_CRITERIA_ITEMS,
            ),
        )
        .property(
            "customFilterCriteria",
            schema::array(custom_filter_schema(), icp::CUSTOM_FILTER_CRITERIA_ITEMS),
        )
        .property("crmFilters", nullable_crm_filters_schema());
    if create {
        body.required("name").required("leadProviderCriteria")
    } else {
        body
    }
}

fn lead_provider_criterion_schema() -> ObjectBuilder {
    schema::closed_object()
        .property("provider", schema::one_of(&icp::LEAD_PROVIDERS))
        .property(
            "type",
            schema::one_of(&icp::ENTITY_TYPES).description(Some("Default `person`")),
        )
        .property(
            "filters",
            schema::free_object(FreeFormLimits::DEFAULT)
                .description(Some("Provider-specific filters")),
        )
        .required("provider")
        .required("filters")
}

/// One `customFilterCriteria` element: `type` picks the variant and the
/// variant its keys.
fn custom_filter_schema() -> Schema {
    let variant = |name: &str| {
        schema::closed_object()
            .property("type", schema::one_of(&[name]))
            .required("type")
    };
    let prompt = || schema::text(icp::PROMPT_CHARS);
    let optional_prompt = || schema::nullable(schema::text(icp::OPTIONAL_PROMPT_CHARS));
    let search_strings = || {
        schema::nullable_array(schema::array(
            schema::text(icp::SEARCH_STRING_CHARS),
            icp::SEARCH_STRINGS_ITEMS,
        ))
    };
    let provider = |default: &str| {
        schema::text(icp::FILTER_PROVIDER_CHARS).description(Some(format!("Default `{default}`")))
    };
    OneOfBuilder::new()
        .item(
            variant("website")
                .property("provider", provider(icp::DEFAULT_WEBSITE_PROVIDER))
                .property("prompt", prompt())
                .required("prompt"),
        )
        .item(
            variant("webscraping")
                .property("provider", provider(icp::DEFAULT_WEBSCRAPING_PROVIDER))
                .property("extractionPrompt", optional_prompt())
                .property("pageFindingPrompt", optional_prompt())
                .property("includeSearchStrings", search_strings())
                .property("excludeSearchStrings", search_strings()),
        )
        .item(
            variant("ai")
                .property("entityType", schema::one_of(&icp::ENTITY_TYPES))
                .property("prompt", prompt())
                .required("entityType")
                .required("prompt"),
        )
        .item(
            variant("maxPeoplePerCompany")
                .property("value", schema::integer(icp::MAX_PEOPLE_PER_COMPANY))
                .required("value"),
        )
        .item(
            variant("maxPercentFromCRM")
                .property("value", schema::number(icp::MAX_PERCENT_FROM_CRM))
                .required("value"),
        )
        .item(
            variant("minDaysUntilReuse")
                .property("value", schema::integer(icp::MIN_DAYS_UNTIL_REUSE))
                .required("value"),
        )
        .item(
            variant("matchFieldWithRegex")
                .property("field", schema::text(icp::FIELD_PATH_CHARS))
                .property(
                    "regex",
                    schema::text(icp::REGEX_CHARS)
                        .format(Some(SchemaFormat::Custom("regex".to_owned())))
                        .description(Some(format!(
                            "A pattern in the Rust `regex` crate's syntax (no look-around or backreferences), compiling to at most {} bytes",
                            icp::REGEX_COMPILED_BYTES
                        ))),
                )
                .required("field")
                .required("regex"),
        )
        .description(Some("A custom filtering rule, tagged by `type`"))
        .into()
}

fn nullable_crm_filters_schema() -> Schema {
    let text = || schema::nullable(schema::text(icp::CRM_TEXT_CHARS));
    let condition = |modes: &[&str], value: RefOr<Schema>| {
        schema::closed_object()
            .property("path", schema::text(icp::FIELD_PATH_CHARS))
            .property("mode", schema::one_of(modes))
            .property("value", value)
            .property(
                "exclude",
                schema::boolean().description(Some("Default false")),
            )
            .required("path")
            .required("mode")
            .required("value")
    };
    let filter = OneOfBuilder::new()
        .item(condition(
            &["equals", "startsWith"],
            schema::text(icp::CRM_VALUE_CHARS).into(),
        ))
        .item(condition(
            &["in"],
            schema::array(schema::text(icp::CRM_VALUE_CHARS), icp::CRM_IN_ITEMS).into(),
        ));
    let filters = schema::closed_object()
        .property("provider", schema::one_of(&icp::CRM_PROVIDERS))
        .property("textSearch", text())
        .property("query", text())
        .property("filters", schema::array(filter, icp::CRM_FILTERS_ITEMS))
        .required("provider");
    OneOfBuilder::new()
        .item(filters)
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

fn entity_type_name(entity: EntityType) -> String {
    match entity {
        EntityType::Person => "person",
        EntityType::Company => "company",
    }
    .to_owned()
}

impl From<&Record<Icp>> for IcpView {
    fn from(record: &Record<Icp>) -> Self {
        let icp = &record.data;
        IcpView {
            id: record.id.clone(),
            name: icp.name.clone(),
            description: icp.description.clone(),
            created_at: timestamp(&record.created_at),
            updated_at: timestamp(&record.updated_at),
            user_ids: icp.user_ids.clone(),
            leads_per_list: icp.leads_per_list,
            active_until: icp.active_until.as_ref().map(timestamp),
            lead_provider_criteria: icp
                .lead_provider_criteria
                .iter()
                .map(|criterion| LeadProviderCriterionView {
                    provider: criterion.provider.clone(),
                    search_type: entity_type_name(criterion.search_type),
                    filters: criterion.filters.clone(),
                })
                .collect(),
            custom_filter_criteria: icp.custom_filter_criteria.iter().map(view_filter).collect(),
            crm_filters: icp.crm_filters.as_ref().map(|crm| CrmFiltersView {
                provider: crm.provider.clone(),
                text_search: crm.text_search.clone(),
                query: crm.query.clone(),
                filters: crm
                    .filters
                    .iter()
                    .map(|filter| {
                        let (mode, value) = match &filter.condition {
                            CrmCondition::Equals(text) => {
                                ("equals", CrmValueView::One(text.clone()))
                            }
                            CrmCondition::StartsWith(text) => {
                                ("startsWith", CrmValueView::One(text.clone()))
                            }
                            CrmCondition::In(values) => ("in", CrmValueView::Many(values.clone())),
                        };
                        CrmFilterView {
                            path: filter.path.clone(),
                            mode: mode.to_owned(),
                            value,
                            exclude: filter.exclude,
                        }
                    })
                    .collect(),
            }),
        }
    }
}

fn view_filter(filter: &CustomFilter) -> CustomFilterView {
    match filter.clone() {
        CustomFilter::Website { provider, prompt } => {
            CustomFilterView::Website { provider, prompt }
        }
        CustomFilter::Webscraping {
            provider,
            extraction_prompt,
            page_finding_prompt,
            include_search_strings,
            exclude_search_strings,
        } => CustomFilterView::Webscraping {
            provider,
            extraction_prompt,
            page_finding_prompt,
            include_search_strings,
            exclude_search_strings,
        },
        CustomFilter::Ai {
            entity_type,
            prompt,
        } => CustomFilterView::Ai {
            entity_type: entity_type_name(entity_type),
            prompt,
        },
        CustomFilter::MaxPeoplePerCompany { value } => {
            CustomFilterView::MaxPeoplePerCompany { value }
        }
        CustomFilter::MaxPercentFromCrm { value } => CustomFilterView::MaxPercentFromCrm { value },
        CustomFilter::MinDaysUntilReuse { value } => CustomFilterView::MinDaysUntilReuse { value },
        CustomFilter::MatchFieldWithRegex { field, regex } => {
            CustomFilterView::MatchFieldWithRegex { field, regex }
        }
    }
}

// ---- request bodies -------------------------------------------------------

const ICP_FIELDS: [&str; 8] = [
    "name",
    "description",
    "userIds",
    "leadsPerList",
    "activeUntil",
    "leadProviderCriteria",
    "customFilterCriteria",
    "crmFilters",
];

/// Reads the body of a create request.
pub fn read_new_icp(body: &Value) -> Result<NewIcp, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let Some(fields) = reader.object(body, &root, &ICP_FIELDS) else {
        return Err(reader.into_error());
    };
    let name = reader.required(&fields, "name", read_name);
    let description = reader.nullable(&fields, "description", read_description);
    let user_ids = reader.optional(&fields, "userIds", read_user_ids);
    let leads_per_list = reader.optional(&fields, "leadsPerList", read_leads_per_list);
    let active_until = reader.nullable(&fields, "activeUntil", read_active_until);
    let lead_provider_criteria =
        reader.required(&fields, "leadProviderCriteria", read_lead_provider_criteria);
    let custom_filter_criteria =
        reader.optional(&fields, "customFilterCriteria", read_custom_filters);
    let crm_filters = reader.nullable(&fields, "crmFilters", read_crm_filters);
    let (
        Some(name),
        Some(description),
        Some(user_ids),
        Some(leads_per_list),
        Some(active_until),
        Some(lead_provider_criteria),
        Some(custom_filter_criteria),
        Some(crm_filters),
    ) = (
        name,
        description,
        user_ids,
        leads_per_list,
        active_until,
        lead_provider_criteria,
        custom_filter_criteria,
        crm_filters,
    )
    else {
        return Err(reader.into_error());
    };
    reader.finish(NewIcp {
        name,
        description,
        user_ids: user_ids.unwrap_or_default(),
        leads_per_list,
        active_until,
        lead_provider_criteria,
        custom_filter_criteria: custom_filter_criteria.unwrap_or_default(),
        crm_filters,
    })
}

/// Reads the body of a PATCH request.
pub fn read_icp_patch(body: &Value) -> Result<IcpPatch, DomainError> {
    let root = FieldPath::root();
    let mut reader = Reader::new();
    let Some(fields) = reader.object(body, &root, &ICP_FIELDS) else {
        return Err(reader.into_error());
    };
    let patch = IcpPatch {
        name: reader.patch(&fields, "name", Nullable::No, read_name),
        description: reader.patch(&fields, "description", Nullable::Yes, read_description),
        user_ids: reader.patch(&fields, "userIds", Nullable::No, read_user_ids),
        leads_per_list: reader.patch(&fields, "leadsPerList", Nullable::No, read_leads_per_list),
        active_until: reader.patch(&fields, "activeUntil", Nullable::Yes, read_active_until),
        lead_provider_criteria: reader.patch(
            &fields,
            "leadProviderCriteria",
            Nullable::No,
            read_lead_provider_criteria,
        ),
        custom_filter_criteria: reader.patch(
            &fields,
            "customFilterCriteria",
            Nullable::No,
            read_custom_filters,
        ),
        crm_filters: reader.patch(&fields, "crmFilters", Nullable::Yes, read_crm_filters),
    };
    reader.finish(patch)
}

fn read_name(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    reader.string(value, path, icp::NAME_CHARS)
}

fn read_description(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    reader.string(value, path, icp::DESCRIPTION_CHARS)
}

fn read_user_ids(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<Vec<String>> {
    reader.array(value, path, icp::USER_IDS_ITEMS, |reader, item, path| {
        reader.string(item, path, icp::USER_ID_CHARS)
    })
}

fn read_leads_per_list(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<i64> {
    reader.integer(value, path, icp::LEADS_PER_LIST)
}

fn read_active_until(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<DateTime<Utc>> {
    let text = reader.string(value, path, 1..=64)?;
    match DateTime::parse_from_rfc3339(&text) {
        Ok(time) => Some(time.with_timezone(&Utc)),
        Err(_) => {
            reader.error(
                path,
                "Invalid datetime: expected RFC 3339, e.g. 2024-12-31T23:59:59.000Z",
            );
            None
        }
    }
}

fn read_entity_type(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<EntityType> {
    reader
        .one_of(value, path, &icp::ENTITY_TYPES)
        .and_then(|text| EntityType::parse(&text))
}

fn read_lead_provider_criteria(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<Vec<LeadProviderCriterion>> {
    reader.array(
        value,
        path,
        icp::LEAD_PROVIDER_CRITERIA_ITEMS,
        |reader, item, path| {
            let fields = reader.object(item, path, &["provider", "type", "filters"])?;
            let provider = reader.required(&fields, "provider", |reader, value, path| {
                reader.one_of(value, path, &icp::LEAD_PROVIDERS)
            });
            let search_type = reader.optional(&fields, "type", read_entity_type);
            let filters = reader.required(&fields, "filters", |reader, value, path| {
                reader.free_object(value, path, FreeFormLimits::DEFAULT)
            });
            Some(LeadProviderCriterion {
                provider: provider?,
                search_type: search_type?.unwrap_or(EntityType::Person),
                filters: filters?,
            })
        },
    )
}

fn read_prompt(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<String> {
    reader.string(value, path, icp::PROMPT_CHARS)
}

fn read_filter_provider(
    reader: &mut Reader,
    fields: &crate::core::input::Fields<'_, '_>,
    default: &str,
) -> Option<String> {
    reader
        .optional(fields, "provider", |reader, value, path| {
            reader.string(value, path, icp::FILTER_PROVIDER_CHARS)
        })
        .map(|provider| provider.unwrap_or_else(|| default.to_owned()))
}

fn read_search_strings(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<Vec<String>> {
    reader.array(
        value,
        path,
        icp::SEARCH_STRINGS_ITEMS,
        |reader, item, path| reader.string(item, path, icp::SEARCH_STRING_CHARS),
    )
}

fn read_custom_filters(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<Vec<CustomFilter>> {
    reader.array(
        value,
        path,
        icp::CUSTOM_FILTER_CRITERIA_ITEMS,
        read_custom_filter,
    )
}

/// One `customFilterCriteria` element: `type` picks the variant, and the
/// variant decides which other keys are allowed.
fn read_custom_filter(
    reader: &mut Reader,
    value: &Value,
    path: &FieldPath,
) -> Option<CustomFilter> {
    let Value::Object(map) = value else {
        reader.object(value, path, &[]);
        return None;
    };
    let type_path = path.key("type");
    let Some(filter_type) = map.get("type") else {
        reader.error(&type_path, "Required");
        return None;
    };
    let filter_type = reader.one_of(filter_type, &type_path, &icp::CUSTOM_FILTER_TYPES)?;
    let numeric = |reader: &mut Reader, range: std::ops::RangeInclusive<i64>| {
        let fields = reader.object(value, path, &["type", "value"])?;
        reader.required(&fields, "value", |reader, value, path| {
            reader.integer(value, path, range)
        })
    };
    match filter_type.as_str() {
        "website" => {
            let fields = reader.object(value, path, &["type", "provider", "prompt"])?;
            let provider = read_filter_provider(reader, &fields, icp::DEFAULT_WEBSITE_PROVIDER);
            let prompt = reader.required(&fields, "prompt", read_prompt);
            Some(CustomFilter::Website {
                provider: provider?,
                prompt: prompt?,
            })
        }
        "webscraping" => {
            let fields = reader.object(
                value,
                path,
                &[
                    "type",
                    "provider",
                    "extractionPrompt",
                    "pageFindingPrompt",
                    "includeSearchStrings",
                    "excludeSearchStrings",
                ],
            )?;
            let optional_prompt = |reader: &mut Reader, value: &Value, path: &FieldPath| {
                reader.string(value, path, icp::OPTIONAL_PROMPT_CHARS)
            };
            let provider = read_filter_provider(reader, &fields, icp::DEFAULT_WEBSCRAPING_PROVIDER);
            let extraction_prompt = reader.nullable(&fields, "extractionPrompt", optional_prompt);
            let page_finding_prompt =
                reader.nullable(&fields, "pageFindingPrompt", optional_prompt);
            let include = reader.nullable(&fields, "includeSearchStrings", read_search_strings);
            let exclude = reader.nullable(&fields, "excludeSearchStrings", read_search_strings);
            Some(CustomFilter::Webscraping {
                provider: provider?,
                extraction_prompt: extraction_prompt?,
                page_finding_prompt: page_finding_prompt?,
                include_search_strings: include?,
                exclude_search_strings: exclude?,
            })
        }
        "ai" => {
            let fields = reader.object(value, path, &["type", "entityType", "prompt"])?;
            let entity_type = reader.required(&fields, "entityType", read_entity_type);
            let prompt = reader.required(&fields, "prompt", read_prompt);
            Some(CustomFilter::Ai {
                entity_type: entity_type?,
                prompt: prompt?,
            })
        }
        "maxPeoplePerCompany" => numeric(reader, icp::MAX_PEOPLE_PER_COMPANY)
            .map(|value| CustomFilter::MaxPeoplePerCompany { value }),
        "minDaysUntilReuse" => numeric(reader, icp::MIN_DAYS_UNTIL_REUSE)
            .map(|value| CustomFilter::MinDaysUntilReuse { value }),
        "maxPercentFromCRM" => {
            let fields = reader.object(value, path, &["type", "value"])?;
            reader
                .required(&fields, "value", |reader, value, path| {
                    reader.number(value, path, icp::MAX_PERCENT_FROM_CRM)
                })
                .map(|value| CustomFilter::MaxPercentFromCrm { value })
        }
        "matchFieldWithRegex" => {
            let fields = reader.object(value, path, &["type", "field", "regex"])?;
            let field = reader.required(&fields, "field", |reader, value, path| {
                reader.string(value, path, icp::FIELD_PATH_CHARS)
            });
            let regex = reader.required(&fields, "regex", |reader, value, path| {
                let pattern = reader.string(value, path, icp::REGEX_CHARS)?;
                match icp::check_regex(&pattern) {
                    Ok(()) => Some(pattern),
                    Err(message) => {
                        reader.error(path, message);
                        None
                    }
                }
            });
            Some(CustomFilter::MatchFieldWithRegex {
                field: field?,
                regex: regex?,
            })
        }
        _ => None, // one_of has already refused any other type
    }
}

fn read_crm_filters(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CrmFilters> {
    let fields = reader.object(value, path, &["provider", "textSearch", "query", "filters"])?;
    let text = |reader: &mut Reader, value: &Value, path: &FieldPath| {
        reader.string(value, path, icp::CRM_TEXT_CHARS)
    };
    let provider = reader.required(&fields, "provider", |reader, value, path| {
        reader.one_of(value, path, &icp::CRM_PROVIDERS)
    });
    let text_search = reader.nullable(&fields, "textSearch", text);
    let query = reader.nullable(&fields, "query", text);
    let filters = reader.optional(&fields, "filters", |reader, value, path| {
        reader.array(value, path, icp::CRM_FILTERS_ITEMS, read_crm_filter)
    });
    Some(CrmFilters {
        provider: provider?,
        text_search: text_search?,
        query: query?,
        filters: filters?.unwrap_or_default(),
    })
}

fn read_crm_filter(reader: &mut Reader, value: &Value, path: &FieldPath) -> Option<CrmFilter> {
    let fields = reader.object(value, path, &["path", "mode", "value", "exclude"])?;
    let field_path = reader.required(&fields, "path", |reader, value, path| {
        reader.string(value, path, icp::FIELD_PATH_CHARS)
    });
    let mode = reader.required(&fields, "mode", |reader, value, path| {
        reader.one_of(value, path, &icp::CRM_MATCH_MODES)
    });
    let exclude = reader.optional(&fields, "exclude", |reader, value, path| {
        reader.boolean(value, path)
    });
    // The value's kind depends on the mode; without a valid mode there is
    // nothing to check it against, but a missing value is still reported.
    let condition = match mode.as_deref() {
        Some("in") => reader.required(&fields, "value", |reader, value, path| {
            reader
                .array(value, path, icp::CRM_IN_ITEMS, |reader, item, path| {
                    reader.string(item, path, icp::CRM_VALUE_CHARS)
                })
                .map(CrmCondition::In)
        }),
        Some(mode) => {
            let equals = mode == "equals";
            reader.required(&fields, "value", |reader, value, path| {
                reader
                    .string(value, path, icp::CRM_VALUE_CHARS)
                    .map(|text| {
                        if equals {
                            CrmCondition::Equals(text)
                        } else {
                            CrmCondition::StartsWith(text)
                        }
                    })
            })
        }
        None => {
            if !fields.contains("value") {
                reader.error(&fields.path_of("value"), "Required");
            }
            None
        }
    };
    Some(CrmFilter {
        path: field_path?,
        condition: condition?,
        exclude: exclude?.unwrap_or(false),
    })
}

/// One create, update or delete of an ICP: who, when, in which request,
/// and what changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IcpHistoryEntryView {
    /// The ICP's version after the change.
    pub version: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub user_id: String,
    /// The API key used; null for JWT callers.
    pub key_id: Option<String>,
    pub request_id: String,
    #[schema(format = DateTime)]
    pub at: String,
    pub changes: Vec<crate::surfaces::FieldChange>,
}

/// A page of an ICP's audit trail, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IcpHistoryPage {
    pub entries: Vec<IcpHistoryEntryView>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

impl From<&crate::core::records::HistoryEntry> for IcpHistoryEntryView {
    fn from(entry: &crate::core::records::HistoryEntry) -> Self {
        Self {
            version: entry.version,
            action: entry.action.clone(),
            user_id: entry.user_id.clone(),
            key_id: entry.key_id.clone(),
            request_id: entry.request_id.clone(),
            at: timestamp(&entry.at),
            changes: entry
                .changes
                .iter()
                .map(crate::surfaces::FieldChange::from)
                .collect(),
        }
    }
}
