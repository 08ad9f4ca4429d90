//! Hood's profile imports at the vendor's paths: upload a CSV file
//! (multipart, part `file`), commit it with a column mapping, read its
//! per-row report, and bulk-update profiles' custom properties from JSON.
//! The work is the core's ([`crate::core::hood_import`], on the import
//! engine `clientele import` uses); this module is the wire.

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Hood, HoodError, HoodResult};
use crate::core::error::{DomainError, FieldPath};
use crate::core::hood::hood_time;
use crate::core::hood_import::{self, MAX_FILE_BYTES, ProfileImport};
use crate::core::records::Record;
use crate::http::extract::{Caller, JsonBody, PathId};
use crate::http::idempotency::{Idempotent, Reply, Started};
use crate::http::{AppState, Failure};
use sha2::Digest;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_import))
        .layer(DefaultBodyLimit::max(MAX_FILE_BYTES + 64 * 1024))
        .routes(routes!(get_import))
        .routes(routes!(commit_import))
        .routes(routes!(import_report))
        .routes(routes!(bulk_update_profiles))
}

/// The long-running operation an upload starts *(vendor)*. Clientele reads
/// and maps the file before answering, so it is `finished` at once.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportOperation {
    /// The import's id, for the commit, the import and its report.
    #[schema(example = "70823f7d-b3ed-4eda-9720-09eaec0a7deb")]
    pub id: String,
    /// The caller's workspace.
    pub company_id: String,
    /// The uploader's user id.
    pub member_id: String,
    #[schema(example = "profile-import")]
    pub name: &'static str,
    #[schema(example = "finished")]
    pub status: &'static str,
    #[schema(example = "2025-11-06 14:13:48")]
    pub start_time: String,
}

/// An import as the import center shows it *(vendor shape)*.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    pub id: String,
    pub company_id: String,
    pub creator_id: String,
    /// `uploaded` (waiting for its commit) or `finished`.
    pub status: String,
    /// Lists the imported profiles join (always empty: not settable yet).
    pub profile_lists: Vec<String>,
    pub file: ImportFileView,
    pub mapping: MappingView,
    pub total_records: u64,
    pub imported_records: u64,
    pub failed_records: u64,
    /// Until when the upload can be committed.
    pub expire_time: String,
    pub create_time: String,
    pub update_time: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportFileView {
    pub path: String,
    pub size: u64,
    pub name: String,
    pub mimetype: String,
    pub extension: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MappingView {
    /// Columns mapped to a property.
    pub mapped: usize,
    /// Columns of the file left out.
    pub unmapped: usize,
    pub items: Vec<MappingItemView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingItemView {
    /// The file's column.
    pub label: String,
    pub property: PropertyView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PropertyView {
    /// The profile property (built-in: email, mobile_phone_number,
    /// full_name, organization_id, comment; else a custom property).
    pub label: String,
    #[schema(example = "text")]
    pub data_type: String,
    /// 1: built-in; 0: custom.
    pub system: u8,
}

/// One row of an import's report.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportReportRow {
    #[schema(example = "2026-04-28T00:00:00Z")]
    pub event_date: String,
    #[schema(example = "2026-04-28 12:00:00")]
    pub event_time: String,
    /// The profile the row created or updated; null for a refused row.
    pub profile_id: Option<String>,
    /// `SUCCESS` or `INVALID`.
    #[schema(example = "SUCCESS")]
    pub code: String,
    #[schema(example = "2026-04-28 12:00:05")]
    pub update_time: String,
    /// The row's line in the file *(ours)*.
    pub line: u64,
    /// Why the row was refused, field by field *(ours)*.
    pub errors: Vec<super::HoodFieldError>,
}

/// An upload's multipart body.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The CSV file: UTF-8, a header row naming each column once.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// A commit's body *(vendor)*.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ImportCommitRequest {
    /// Each column to import and the property it fills; columns left out
    /// are not imported. At least one of email and mobile_phone_number.
    #[schema(min_items = 1)]
    pub mapping: Vec<MappingItemView>,
}

/// A bulk update's body *(vendor)*.
#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BulkUpdateRequest {
    /// At most 1,000 existing profiles, each id once.
    #[schema(min_items = 1, max_items = 1000)]
    pub profiles: Vec<BulkProfile>,
}

#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct BulkProfile {
    #[schema(example = "1000000", pattern = "^[0-9]{1,19}$")]
    pub id: String,
    /// At most 100 keys, each `{"type": "string"|"number"|"boolean", "value": …}`;
    /// a null value removes the key.
    pub custom_properties: std::collections::BTreeMap<String, TypedValue>,
}

#[derive(Debug, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct TypedValue {
    pub r#type: ValueType,
    /// Of the type stated; null removes the key.
    #[schema(schema_with = scalar_or_null, example = "John Doe")]
    pub value: serde_json::Value,
}

#[derive(Debug, ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ValueType {
    String,
    Number,
    Boolean,
}

/// A string, number, boolean or null.
fn scalar_or_null() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Boolean,
            Type::Null,
        ]))
        .build()
}

/// What a bulk update did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BulkUpdateResult {
    #[schema(example = "finished")]
    pub status: &'static str,
    pub updated_records: u64,
}

/// An uploaded file, read from a multipart body's `file` part.
pub struct Upload {
    name: String,
    bytes: Vec<u8>,
}

impl FromRequest<AppState> for Upload {
    type Rejection = Failure<Hood>;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut multipart = Multipart::from_request(request, state).await.map_err(|_| {
            DomainError::UnsupportedMediaType(
                "Send the file as multipart/form-data, in a part named file".into(),
            )
        })?;
        let part_error = |error: axum::extract::multipart::MultipartError| {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                DomainError::PayloadTooLarge {
                    limit: MAX_FILE_BYTES,
                }
            } else {
                DomainError::MalformedBody(format!(
                    "The multipart body cannot be read: {}",
                    error.body_text()
                ))
            }
        };
        while let Some(field) = multipart.next_field().await.map_err(part_error)? {
            if field.name() != Some("file") {
                continue;
            }
            let name = field.file_name().unwrap_or("import.csv").to_owned();
            let bytes = field.bytes().await.map_err(part_error)?;
            if bytes.len() > MAX_FILE_BYTES {
                return Err(DomainError::PayloadTooLarge {
                    limit: MAX_FILE_BYTES,
                }
                .into());
            }
            return Ok(Upload {
                name,
                bytes: bytes.to_vec(),
            });
        }
        Err(DomainError::invalid(
            FieldPath::root().key("file"),
            "Required: a part named file holding the CSV file",
        )
        .into())
    }
}

fn import_view(record: &Record<ProfileImport>) -> ImportView {
    let import = &record.data;
    let mapped = import.mapping.len();
    ImportView {
        id: record.id.clone(),
        company_id: String::new(),
        creator_id: import.creator_id.clone(),
        status: import.status.clone(),
        profile_lists: Vec::new(),
        file: ImportFileView {
            path: format!("./profiles/imports/{}", record.id),
            size: import.file.size,
            name: import.file.name.clone(),
            mimetype: import.file.mimetype.clone(),
            extension: import.file.extension.clone(),
        },
        mapping: MappingView {
            mapped,
            unmapped: import.columns.len().saturating_sub(mapped),
            items: import
                .mapping
                .iter()
                .map(|item| MappingItemView {
                    label: item.label.clone(),
                    property: PropertyView {
                        label: item.property.label.clone(),
                        data_type: item.property.data_type.clone(),
                        system: item.property.system,
                    },
                })
                .collect(),
        },
        total_records: import.total_records,
        imported_records: import.imported_records,
        failed_records: import.failed_records,
        expire_time: hood_time(hood_import::expire_time(record)),
        create_time: hood_time(record.created_at),
        update_time: hood_time(record.updated_at),
    }
}

fn with_company(mut view: ImportView, workspace: &str) -> ImportView {
    view.company_id = workspace.to_owned();
    view
}

/// Upload a CSV file of profiles: its columns are mapped to profile
/// properties by name (built-in ones by their usual names, the rest as
/// custom properties), to be committed with that or another mapping.
#[utoipa::path(
    post,
    path = "/v1/hood/profiles/imports",
    tag = "Ocamba Hood profile imports",
    security(("bearer" = [])),
    request_body(content = UploadForm, content_type = "multipart/form-data", description = "A part named `file`: a CSV file (UTF-8, header row) of at most 50 MB"),
    responses(
        (status = 202, description = "The file is read and mapped; the operation's id is the import's", body = ImportOperation),
        (status = 400, description = "No file part, not CSV or not UTF-8, a header with a repeated or empty column", body = HoodError),
        (status = 413, description = "A file over 50 MB", body = HoodError),
        (status = 415, description = "Not a multipart/form-data body", body = HoodError),
    )
)]
async fn upload_import(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    idempotent: Idempotent<Hood>,
    upload: Upload,
) -> HoodResult {
    // A retry is the same upload when it sends the same file (by name and
    // content).
    let fingerprint = serde_json::json!({
        "file": upload.name,
        "sha256": hex::encode(sha2::Sha256::digest(&upload.bytes)),
    });
    let writing = match idempotent
        .begin(&app, &principal, Some(&fingerprint))
        .await?
    {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let import = hood_import::upload(&principal, &upload.name, upload.bytes)?;
    let operation = {
        let principal = principal.clone();
        move |record: &Record<ProfileImport>| {
            Reply::json(
                StatusCode::ACCEPTED,
                &ImportOperation {
                    id: record.id.clone(),
                    company_id: principal.workspace.as_str().to_owned(),
                    member_id: principal.user_id.clone(),
                    name: "profile-import",
                    status: "finished",
                    start_time: hood_time(record.created_at),
                },
            )
        }
    };
    let keeper = writing.keeper(operation.clone());
    let record = app
        .records
        .create_keeping(&principal, |_| import, keeper)
        .await?;
    Ok(writing.respond(operation(&record)))
}

/// An import: its file, the mapping (proposed, or the committed one), and
/// the counts once committed *(ours: the vendor's import center path is
/// not documented)*.
#[utoipa::path(
    get,
    path = "/v1/hood/profiles/imports/{id}",
    tag = "Ocamba Hood profile imports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The import's id (the upload's operation id)")),
    responses(
        (status = 200, description = "The import", body = ImportView),
        (status = 404, description = "No such import in the caller's workspace", body = HoodError),
    )
)]
async fn get_import(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
) -> HoodResult {
    let record = app.records.get::<ProfileImport>(&principal, &id).await?;
    Ok(Json(with_company(
        import_view(&record),
        principal.workspace.as_str(),
    ))
    .into_response())
}

/// Commit an upload with a column mapping: each row becomes a profile,
/// validated as a create (or, for a profile found by its email — or by
/// its phone number when email is not mapped — as a PATCH), and the
/// report says what happened to each row.
#[utoipa::path(
    post,
    path = "/v1/hood/profiles/imports/{id}/commit",
    tag = "Ocamba Hood profile imports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The import's id")),
    request_body(content = ImportCommitRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Committed: the import with its counts", body = ImportView),
        (status = 400, description = "An invalid mapping (every error listed), or an import already committed or expired", body = HoodError),
        (status = 404, description = "No such import in the caller's workspace", body = HoodError),
        (status = 415, description = "Body is not JSON", body = HoodError),
    )
)]
async fn commit_import(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
    idempotent: Idempotent<Hood>,
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let workspace = principal.workspace.as_str().to_owned();
    let committed = move |record: &Record<ProfileImport>| {
        Reply::json(
            StatusCode::ACCEPTED,
            &with_company(import_view(record), &workspace),
        )
    };
    let keeper = writing.keeper(committed.clone());
    let record = hood_import::commit::<Hood>(&app.records, &principal, &id, &body, keeper).await?;
    Ok(writing.respond(committed(&record)))
}

/// What happened to each row of a committed import, in file order; an
/// import not committed yet has no rows.
#[utoipa::path(
    get,
    path = "/v1/hood/reports/profiles/import/{id}/full",
    tag = "Ocamba Hood profile imports",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The import's id")),
    responses(
        (status = 200, description = "One entry per row", body = [ImportReportRow]),
        (status = 404, description = "No such import in the caller's workspace", body = HoodError),
    )
)]
async fn import_report(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    PathId(id, ..): PathId<Hood>,
) -> HoodResult {
    let record = app.records.get::<ProfileImport>(&principal, &id).await?;
    let rows: Vec<ImportReportRow> = record
        .data
        .report
        .iter()
        .map(|row| ImportReportRow {
            event_date: row.time.format("%Y-%m-%dT00:00:00Z").to_string(),
            event_time: hood_time(row.time),
            profile_id: row.profile_id.clone(),
            code: row.code.clone(),
            update_time: hood_time(row.time),
            line: row.line,
            errors: row
                .errors
                .iter()
                .map(|error| super::HoodFieldError {
                    field: error.path.clone(),
                    message: error.message.clone(),
                })
                .collect(),
        })
        .collect();
    Ok(Json(rows).into_response())
}

/// Update existing profiles' custom properties *(vendor)*: merged key by
/// key as a PATCH merges them. Every profile must exist and every value
/// be valid, or nothing changes (400 lists each problem by its path).
#[utoipa::path(
    post,
    path = "/v1/hood/profiles/import",
    tag = "Ocamba Hood profile imports",
    security(("bearer" = [])),
    request_body(content = BulkUpdateRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Every profile updated (applied before the answer)", body = BulkUpdateResult),
        (status = 400, description = "An invalid body or an unknown profile id; nothing was changed", body = HoodError),
        (status = 413, description = "Body over 1 MiB", body = HoodError),
        (status = 415, description = "Body is not JSON", body = HoodError),
    )
)]
async fn bulk_update_profiles(
    State(app): State<AppState>,
    Caller(principal, ..): Caller<Hood>,
    idempotent: Idempotent<Hood>,
    JsonBody(body, ..): JsonBody<Hood>,
) -> HoodResult {
    let writing = match idempotent.begin(&app, &principal, Some(&body)).await? {
        Started::Run(writing) => writing,
        Started::Replay(response) => return Ok(response),
    };
    let updates = hood_import::read_bulk_update(&body)?;
    let updated_reply = |updated: &u64| {
        Reply::json(
            StatusCode::ACCEPTED,
            &BulkUpdateResult {
                status: "finished",
                updated_records: *updated,
            },
        )
    };
    let keeper = writing.keeper(updated_reply);
    let updated =
        hood_import::bulk_update::<Hood>(&app.records, &principal, updates, keeper).await?;
    Ok(writing.respond(updated_reply(&updated)))
}
