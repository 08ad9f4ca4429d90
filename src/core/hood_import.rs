//! Hood's profile imports *(vendor paths; the flow's details are ours where
//! the pages are silent)*: a CSV file is uploaded and its columns mapped to
//! profile properties by their names; a commit with the chosen mapping
//! turns each row into a profile through the import engine
//! ([`crate::core::import`]), upserting by email (or by phone number when
//! only that is mapped), and keeps a per-row report. A JSON bulk update sets
//! existing profiles' `custom_properties`.
//!
//! An import is a record of its own kind (so it is per workspace, stored on
//! both backends and read by id like any record); it holds the file's text
//! and is not written to the audit trail, which is for customer records
//! (the profiles it creates or changes are, each with its own entry).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::{DomainError, FieldError, FieldPath, RecordKind};
use super::fields::Dialect;
use super::hood::{MAX_CUSTOM_PROPERTIES, Profile};
use super::import::rows::ragged_row;
use super::import::{Importer, MatchBy, Outcome, row_errors};
use super::records::{Document, Keeper, Precondition, Record, Records};

/// How long an uploaded file may wait for its commit *(ours)*.
pub const COMMIT_WITHIN: chrono::Duration = chrono::Duration::days(7);

/// Until when an upload can be committed.
pub fn expire_time(import: &Record<ProfileImport>) -> DateTime<Utc> {
    import.created_at + COMMIT_WITHIN
}

/// The largest file an upload takes *(vendor: 50MB)*.
pub const MAX_FILE_BYTES: usize = 50 * 1024 * 1024;
/// Profiles one JSON bulk update may name *(ours)*.
pub const MAX_BULK_PROFILES: usize = 1_000;

/// The built-in properties a column may map to (`system: 1`), and the
/// column names each is recognised by on upload (lower case, `-` and
/// spaces read as `_`).
pub const SYSTEM_PROPERTIES: [(&str, &[&str]); 5] = [
    ("email", &["email", "e_mail", "email_address", "mail"]),
    (
        "mobile_phone_number",
        &[
            "mobile_phone_number",
            "phone",
            "mobile",
            "phone_number",
            "mobile_phone",
            "msisdn",
        ],
    ),
    (
        "full_name",
        &[
            "full_name",
            "name",
            "profile_name",
            "contact_name",
            "display_name",
        ],
    ),
    ("organization_id", &["organization_id", "organization"]),
    ("comment", &["comment", "note", "notes"]),
];

/// An uploaded file and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileImport {
    pub creator_id: String,
    /// `uploaded`, then `finished` once committed.
    pub status: String,
    pub file: ImportedFile,
    /// The file's column names, in order.
    pub columns: Vec<String>,
    /// The mapping: guessed on upload, the committed one after.
    pub mapping: Vec<MappingItem>,
    pub total_records: u64,
    pub imported_records: u64,
    pub failed_records: u64,
    pub report: Vec<ReportRow>,
    /// The file's text (dropped once committed: the report remains).
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedFile {
    pub name: String,
    pub size: u64,
    pub mimetype: String,
    pub extension: String,
}

/// One column's mapping: the file's column `label` to a profile property.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappingItem {
    pub label: String,
    pub property: MappedProperty,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedProperty {
    pub label: String,
    pub data_type: String,
    /// 1: a built-in property; 0: a custom property.
    pub system: u8,
}

/// What happened to one row of a committed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    pub line: u64,
    pub profile_id: Option<String>,
    /// `SUCCESS` (created, updated or already equal) or `INVALID`.
    pub code: String,
    pub errors: Vec<ReportError>,
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportError {
    pub path: String,
    pub message: String,
}

impl Document for ProfileImport {
    const KIND: RecordKind = RecordKind::HoodProfileImport;
    const AUDITED: bool = false;
}

/// `Phone Number` → `phone_number`.
fn normalise(label: &str) -> String {
    label
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c == '-' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The mapping an upload proposes: a built-in property where the column's
/// name is one of its names, else a custom property of the column's name.
pub fn guess_mapping(columns: &[String]) -> Vec<MappingItem> {
    let mut taken = Vec::new();
    columns
        .iter()
        .map(|column| {
            let name = normalise(column);
            let system = SYSTEM_PROPERTIES
                .iter()
                .find(|(property, aliases)| {
                    aliases.contains(&name.as_str()) && !taken.contains(property)
                })
                .map(|(property, _)| *property);
            if let Some(property) = system {
                taken.push(property);
            }
            MappingItem {
                label: column.clone(),
                property: MappedProperty {
                    label: system.map_or(name, str::to_owned),
                    data_type: "text".into(),
                    system: u8::from(system.is_some()),
                },
            }
        })
        .collect()
}

/// Reads an uploaded file: CSV, UTF-8, a header row naming each column
/// once, at least one row.
pub fn upload(
    creator: &Principal,
    file_name: &str,
    bytes: Vec<u8>,
) -> Result<ProfileImport, DomainError> {
    let file_error = |message: String| DomainError::invalid(FieldPath::root().key("file"), message);
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, extension)| extension.to_ascii_lowercase())
        .unwrap_or_default();
    if extension == "xlsx" {
        return Err(file_error(
            "xlsx files are not supported here; save the sheet as CSV and upload that".into(),
        ));
    }
    let size = bytes.len() as u64;
    let content = String::from_utf8(bytes).map_err(|error| {
        file_error(format!(
            "the file is not UTF-8 text (byte {} is not); upload a CSV file",
            error.utf8_error().valid_up_to() + 1
        ))
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(content.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .map_err(|error| file_error(format!("the header row cannot be read: {error}")))?
        .iter()
        .map(|name| name.trim_start_matches('\u{feff}').trim().to_owned())
        .collect();
    if columns.iter().all(String::is_empty) {
        return Err(file_error(
            "the file is empty: a CSV file needs a header row naming its columns".into(),
        ));
    }
    for (index, column) in columns.iter().enumerate() {
        if column.is_empty() || column.contains('\0') {
            return Err(file_error(format!(
                "column {} of the header has no name",
                index + 1
            )));
        }
        if columns[..index].contains(column) {
            return Err(file_error(format!(
                "column {} ({column:?}) appears twice in the header",
                index + 1
            )));
        }
    }
    let total = reader.records().count() as u64;
    let mapping = guess_mapping(&columns);
    Ok(ProfileImport {
        creator_id: creator.user_id.clone(),
        status: "uploaded".into(),
        file: ImportedFile {
            name: file_name.to_owned(),
            size,
            mimetype: "text/csv".into(),
            extension: if extension.is_empty() {
                "csv".into()
            } else {
                extension
            },
        },
        columns,
        mapping,
        total_records: total,
        imported_records: 0,
        failed_records: 0,
        report: Vec::new(),
        content,
    })
}

/// Reads a commit's `mapping`: every item names a column of the file and
/// a property (built-in ones by name, `data_type` text); at least one of
/// email and mobile_phone_number is mapped *(vendor)*; no property twice.
pub fn read_mapping(body: &Value, columns: &[String]) -> Result<Vec<MappingItem>, DomainError> {
    let root = FieldPath::root();
    let mut errors = Vec::new();
    let object = object_with(body, &["mapping"], &root, &mut errors)?;
    let items = match object.get("mapping") {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => {
            return Err(DomainError::invalid(
                root.key("mapping"),
                "Must map at least one column",
            ));
        }
        _ => {
            return Err(DomainError::invalid(
                root.key("mapping"),
                "Required: an array of {label, property}",
            ));
        }
    };
    let mut mapping: Vec<MappingItem> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = root.key("mapping").index(index);
        let Some(item) = read_mapping_item(item, &path, columns, &mut errors) else {
            continue;
        };
        let property = &item.property;
        if mapping
            .iter()
            .any(|m| m.property.label == property.label && m.property.system == property.system)
        {
            errors.push(field_error(
                path.key("property").key("label"),
                format!("{} is mapped twice", property.label),
            ));
        } else {
            mapping.push(item);
        }
    }
    let maps = |name: &str| {
        mapping
            .iter()
            .any(|m| m.property.system == 1 && m.property.label == name)
    };
    if errors.is_empty() && !maps("email") && !maps("mobile_phone_number") {
        errors.push(field_error(
            root.key("mapping"),
            "At least one of email or mobile_phone_number must be mapped",
        ));
    }
    if errors.is_empty() {
        Ok(mapping)
    } else {
        Err(DomainError::Invalid(errors))
    }
}

/// The string at `key` of `value`, if it is one.
fn text<'v>(value: Option<&'v Value>, key: &str) -> Option<&'v str> {
    value
        .and_then(|value| value.get(key))
        .and_then(Value::as_str)
}

/// One `{label, property: {label, data_type, system}}` of a mapping, or
/// `None` after recording why not.
fn read_mapping_item(
    item: &Value,
    path: &FieldPath,
    columns: &[String],
    errors: &mut Vec<FieldError>,
) -> Option<MappingItem> {
    let found = errors.len();
    let property = item.get("property");
    let label = text(Some(item), "label");
    let name = text(property, "label");
    let data_type = text(property, "data_type").unwrap_or("text");
    let system = property
        .and_then(|p| p.get("system"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let at = |key: &str| path.key("property").key(key);
    match label {
        None => errors.push(field_error(
            path.key("label"),
            "Required: the file's column name",
        )),
        Some(label) if !columns.iter().any(|column| column == label) => errors.push(field_error(
            path.key("label"),
            format!(
                "The file has no column {label:?}; its columns are: {}",
                columns.join(", ")
            ),
        )),
        Some(_) => {}
    }
    match name {
        None => errors.push(field_error(
            at("label"),
            "Required: the property the column maps to",
        )),
        Some(name) if system == 1 && !SYSTEM_PROPERTIES.iter().any(|(p, _)| *p == name) => {
            let names: Vec<&str> = SYSTEM_PROPERTIES.iter().map(|(p, _)| *p).collect();
            errors.push(field_error(
                at("label"),
                format!("Not a built-in property; they are: {}", names.join(", ")),
            ));
        }
        Some(name) if name.is_empty() || name.chars().count() > 255 => {
            errors.push(field_error(at("label"), "Must have 1 to 255 characters"));
        }
        Some(_) => {}
    }
    if system > 1 {
        errors.push(field_error(
            at("system"),
            "Must be 0 (custom) or 1 (built-in)",
        ));
    }
    if data_type != "text" {
        errors.push(field_error(at("data_type"), "Only text is supported"));
    }
    if errors.len() > found {
        return None;
    }
    Some(MappingItem {
        label: label?.to_owned(),
        property: MappedProperty {
            label: name?.to_owned(),
            data_type: "text".into(),
            system: u8::from(system == 1),
        },
    })
}

fn field_error(path: FieldPath, message: impl Into<String>) -> FieldError {
    FieldError {
        path,
        message: message.into(),
    }
}

/// `body` as an object whose keys are among `allowed` (others are recorded
/// as unrecognized).
fn object_with<'v>(
    body: &'v Value,
    allowed: &[&str],
    path: &FieldPath,
    errors: &mut Vec<FieldError>,
) -> Result<&'v Map<String, Value>, DomainError> {
    let Some(object) = body.as_object() else {
        return Err(DomainError::invalid(
            path.clone(),
            format!("Expected an object with {}", allowed.join(" and ")),
        ));
    };
    for key in object.keys().filter(|key| !allowed.contains(&key.as_str())) {
        errors.push(field_error(path.key(key), "Unrecognized key"));
    }
    Ok(object)
}

/// Commits import `id` with `mapping`: every row becomes a profile
/// (upserted by email, or by phone when email is not mapped), the report
/// says what happened to each, and the import is `finished`. A commit
/// that stopped half-way (a crash) leaves the import `uploaded`, and
/// committing again is safe: rows already written match and stay.
pub async fn commit<D: Dialect>(
    records: &Records,
    principal: &Principal,
    id: &str,
    body: &Value,
    keeper: Option<Keeper<Record<ProfileImport>>>,
) -> Result<Record<ProfileImport>, DomainError> {
    let current = records.get::<ProfileImport>(principal, id).await?;
    let expires = expire_time(&current);
    if Utc::now() > expires {
        return Err(DomainError::invalid(
            FieldPath::root(),
            format!(
                "Import {id} expired at {}; upload the file again",
                super::hood::hood_time(expires)
            ),
        ));
    }
    if current.data.status != "uploaded" {
        return Err(DomainError::invalid(
            FieldPath::root(),
            format!(
                "Import {id} is {} already; upload the file again to import it once more",
                current.data.status
            ),
        ));
    }
    let mapping = read_mapping(body, &current.data.columns)?;
    let email_mapped = mapping
        .iter()
        .any(|m| m.property.system == 1 && m.property.label == "email");
    let match_by = MatchBy::Field(if email_mapped {
        "email"
    } else {
        "mobile_phone_number"
    });
    let importer = Importer::<Profile, D>::new(records.clone(), principal.clone(), Some(match_by));
    let mut report = Vec::new();
    let mut rows = mapped_rows(&current.data.content, &current.data.columns, &mapping).peekable();
    while rows.peek().is_some() {
        let batch: Vec<_> = rows.by_ref().take(super::import::BATCH_ROWS).collect();
        let mut prepared = Vec::with_capacity(batch.len());
        let mut outcomes = Vec::new();
        for (line, row) in batch {
            match row {
                Ok(row) => prepared.push(importer.prepare(line, row)),
                Err(error) => outcomes.push((line, Outcome::Rejected(error))),
            }
        }
        outcomes.extend(importer.write(prepared, None).await?);
        outcomes.sort_by_key(|(line, _)| *line);
        let now = Utc::now();
        report.extend(
            outcomes
                .into_iter()
                .map(|(line, outcome)| report_row(line, outcome, now)),
        );
    }
    drop(rows);
    let failed = report.iter().filter(|row| row.code != "SUCCESS").count() as u64;
    let total = report.len() as u64;
    records
        .update_keeping::<ProfileImport>(
            principal,
            id,
            &Precondition::OneOf(vec![current.etag()]),
            move |import| {
                import.status = "finished".into();
                import.mapping = mapping;
                import.total_records = total;
                import.imported_records = total - failed;
                import.failed_records = failed;
                import.report = report;
                import.content = String::new();
                Ok(())
            },
            keeper,
        )
        .await
}

fn report_row(line: u64, outcome: Outcome, time: DateTime<Utc>) -> ReportRow {
    let (profile_id, code, errors) = match outcome {
        Outcome::Created(id) | Outcome::Updated(id) | Outcome::Unchanged(id) => {
            (Some(id), "SUCCESS", Vec::new())
        }
        Outcome::Rejected(error) => (
            None,
            "INVALID",
            row_errors(&error)
                .into_iter()
                .map(|e| ReportError {
                    path: e.path.to_string(),
                    message: e.message,
                })
                .collect(),
        ),
    };
    ReportRow {
        line,
        profile_id,
        code: code.into(),
        errors,
        time,
    }
}

/// The file's rows as profile bodies with their line numbers, or why a
/// row cannot be one.
fn mapped_rows<'a>(
    content: &'a str,
    columns: &'a [String],
    mapping: &'a [MappingItem],
) -> impl Iterator<Item = (u64, Result<Map<String, Value>, DomainError>)> + 'a {
    let reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(content.as_bytes());
    reader.into_records().map(move |row| {
        let line = row
            .as_ref()
            .ok()
            .and_then(|row| row.position())
            .map_or(0, |p| p.line());
        let fields = match row {
            Ok(row) if row.len() != columns.len() => Err(ragged_row(row.len(), columns.len())),
            Ok(row) => Ok(mapped_row(&row, columns, mapping)),
            Err(error) => Err(DomainError::invalid(
                FieldPath::root(),
                format!("cannot read the row: {error}"),
            )),
        };
        (line, fields)
    })
}

/// One CSV row as a profile body: built-in properties at the top, custom
/// ones inside `custom_properties`; empty cells set nothing.
fn mapped_row(
    row: &csv::StringRecord,
    columns: &[String],
    mapping: &[MappingItem],
) -> Map<String, Value> {
    let mut body = Map::new();
    let mut custom = Map::new();
    for item in mapping {
        let Some(index) = columns.iter().position(|column| *column == item.label) else {
            continue;
        };
        let Some(cell) = row.get(index).filter(|cell| !cell.is_empty()) else {
            continue;
        };
        if item.property.system == 1 {
            body.insert(item.property.label.clone(), Value::String(cell.to_owned()));
        } else {
            custom.insert(item.property.label.clone(), Value::String(cell.to_owned()));
        }
    }
    if !custom.is_empty() {
        body.insert("custom_properties".into(), Value::Object(custom));
    }
    body
}

/// One profile of a bulk update: its id and the custom properties to
/// merge into it.
pub type BulkUpdate = (String, Map<String, Value>);

/// Reads a JSON bulk update `{"profiles": [{"id", "custom_properties":
/// {"key": {"type", "value"}}}]}` into `(id, custom_properties)` pairs;
/// every error is reported with its path.
pub fn read_bulk_update(body: &Value) -> Result<Vec<BulkUpdate>, DomainError> {
    let root = FieldPath::root();
    let mut errors = Vec::new();
    let object = object_with(body, &["profiles"], &root, &mut errors)?;
    let profiles = match object.get("profiles") {
        Some(Value::Array(items)) if items.is_empty() => {
            return Err(DomainError::invalid(
                root.key("profiles"),
                "Must name at least one profile",
            ));
        }
        Some(Value::Array(items)) if items.len() > MAX_BULK_PROFILES => {
            return Err(DomainError::invalid(
                root.key("profiles"),
                format!("At most {MAX_BULK_PROFILES} profiles per request"),
            ));
        }
        Some(Value::Array(items)) => items,
        _ => {
            return Err(DomainError::invalid(
                root.key("profiles"),
                "Required: an array of {id, custom_properties}",
            ));
        }
    };
    let mut updates: Vec<BulkUpdate> = Vec::new();
    for (index, profile) in profiles.iter().enumerate() {
        let path = root.key("profiles").index(index);
        if let Some((id, properties)) = read_bulk_profile(profile, &path, &mut errors) {
            if updates.iter().any(|(seen, _)| *seen == id) {
                errors.push(field_error(
                    path.key("id"),
                    format!("{id} appears more than once; each profile must have a unique id"),
                ));
            } else {
                updates.push((id, properties));
            }
        }
    }
    if errors.is_empty() {
        Ok(updates)
    } else {
        Err(DomainError::Invalid(errors))
    }
}

/// One `{id, custom_properties}` of a bulk update, or `None` after
/// recording why not.
fn read_bulk_profile(
    profile: &Value,
    path: &FieldPath,
    errors: &mut Vec<FieldError>,
) -> Option<BulkUpdate> {
    let found = errors.len();
    let profile = match object_with(profile, &["id", "custom_properties"], path, errors) {
        Ok(profile) => profile,
        Err(DomainError::Invalid(mut refused)) => {
            errors.append(&mut refused);
            return None;
        }
        Err(_) => return None,
    };
    let id = match profile.get("id") {
        Some(Value::String(id))
            if !id.is_empty() && id.len() <= 19 && id.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(id.clone())
        }
        Some(_) => {
            errors.push(field_error(
                path.key("id"),
                "Must be a numeric string, e.g. \"1000\"",
            ));
            None
        }
        None => {
            errors.push(field_error(path.key("id"), "Required"));
            None
        }
    };
    let mut properties = Map::new();
    let at = path.key("custom_properties");
    match profile.get("custom_properties") {
        Some(Value::Object(entries)) if entries.len() > MAX_CUSTOM_PROPERTIES => {
            errors.push(field_error(
                at,
                format!("At most {MAX_CUSTOM_PROPERTIES} custom properties per profile"),
            ));
        }
        Some(Value::Object(entries)) => {
            for (key, entry) in entries {
                match typed_value(entry) {
                    Ok(value) => {
                        properties.insert(key.clone(), value);
                    }
                    Err(message) => errors.push(field_error(at.key(key), message)),
                }
            }
        }
        Some(_) => errors.push(field_error(at, "Expected an object of {type, value}")),
        None => errors.push(field_error(at, "Required")),
    }
    if errors.len() > found {
        None
    } else {
        Some((id?, properties))
    }
}

/// `{"type": "string", "value": "…"}` (also `number`, `boolean`) as the
/// value stored in `custom_properties`; `null` removes the key.
fn typed_value(entry: &Value) -> Result<Value, String> {
    let expected = "Expected {\"type\": \"string\"|\"number\"|\"boolean\", \"value\": …}";
    let Some(object) = entry.as_object() else {
        return Err(expected.into());
    };
    if object.keys().any(|key| key != "type" && key != "value") {
        return Err(expected.into());
    }
    let value = object.get("value").cloned().unwrap_or(Value::Null);
    match (object.get("type").and_then(Value::as_str), &value) {
        (_, Value::Null) => Ok(Value::Null),
        (Some("string"), Value::String(_))
        | (Some("number"), Value::Number(_))
        | (Some("boolean"), Value::Bool(_)) => Ok(value),
        (Some("string"), _) => Err("value must be a string".into()),
        (Some("number"), _) => Err("value must be a number".into()),
        (Some("boolean"), _) => Err("value must be true or false".into()),
        _ => Err(expected.into()),
    }
}

/// Applies a bulk update: every profile exists and every change is valid,
/// or nothing is written (one transaction; 400 lists each problem).
pub async fn bulk_update<D: Dialect>(
    records: &Records,
    principal: &Principal,
    updates: Vec<BulkUpdate>,
    keeper: Option<Keeper<u64>>,
) -> Result<u64, DomainError> {
    use super::fields::Declared;
    let count = updates.len() as u64;
    records
        .transact(principal, move |session| {
            Box::pin(async move {
                let mut errors = Vec::new();
                for (index, (id, properties)) in updates.into_iter().enumerate() {
                    let path = FieldPath::root().key("profiles").index(index);
                    let Some(record) = session.get::<Profile>(&id).await? else {
                        errors.push(FieldError {
                            path: path.key("id"),
                            message: format!("Profile {id} does not exist"),
                        });
                        continue;
                    };
                    let body = serde_json::json!({"custom_properties": properties});
                    let patch = match Profile::read_patch::<D>(&body) {
                        Ok(patch) => patch,
                        Err(error) => {
                            errors.extend(row_errors(&error).into_iter().map(|e| FieldError {
                                path: path.join(&e.path),
                                message: e.message,
                            }));
                            continue;
                        }
                    };
                    if let Err(error) = session
                        .update(record, |profile| Profile::apply_patch(patch, profile))
                        .await
                    {
                        match error {
                            DomainError::Invalid(found) => {
                                errors.extend(found.into_iter().map(|e| FieldError {
                                    path: path.join(&e.path),
                                    message: e.message,
                                }))
                            }
                            other => return Err(other),
                        }
                    }
                }
                if !errors.is_empty() {
                    return Err(DomainError::Invalid(errors));
                }
                if let Some(keeper) = keeper {
                    session.keep(keeper, &count).await?;
                }
                Ok(count)
            })
        })
        .await
}
