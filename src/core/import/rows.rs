//! Files of records, read as a stream of JSON objects (one per row) and
//! written back: CSV with a header row, or NDJSON (one JSON object per
//! line). Nothing here holds more than one row at a time, so memory stays
//! flat whatever the file's size.
//!
//! CSV cells: a column named after a text field takes the cell as it is; a
//! column of any other field takes the cell as JSON (`42`, `true`,
//! `["a","b"]`, `{"k":1}`) and, if it is not JSON, as text, which the
//! field's rule then refuses with the same message an API body would get.
//! A dotted column name (`custom_properties.plan`) sets one key inside an
//! object field, its cell read as JSON or else as text. An empty cell sets
//! nothing, so CSV cannot tell an empty string from no value (NDJSON can).
//!
//! What stops a file (a [`FileError`], naming the line): a header that is
//! not UTF-8, has an unknown or repeated column, or is missing; a CSV row
//! longer than [`MAX_ROW_BYTES`] (a quoted cell may span lines, so the
//! reader cannot find where the next row starts); I/O errors. What only
//! rejects a row (its errors go to the rejects file): a row with more or
//! fewer cells than the header, a cell or line that is not UTF-8, an
//! NDJSON line that is not a JSON object or is longer than the limit.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value};

use crate::core::error::{DomainError, FieldError, FieldPath};
use crate::core::input::parse_json_strictly;
use crate::core::shape::{JsonType, Shape};

/// The longest row a file may hold: the API's body limit, so a row can
/// always be sent as a request too.
pub const MAX_ROW_BYTES: u64 = 1024 * 1024;

/// A file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    /// The format a file name's extension names, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else if [".ndjson", ".jsonl", ".json"]
            .iter()
            .any(|extension| lower.ends_with(extension))
        {
            Some(Format::Ndjson)
        } else {
            None
        }
    }
}

/// A problem that stops reading the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: Option<u64>,
    pub message: String,
}

impl FileError {
    fn at(line: u64, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            message: message.into(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FileError {}

/// One row: its line in the file, and its object or why it was refused.
#[derive(Debug)]
pub struct Row {
    pub line: u64,
    pub fields: Result<Map<String, Value>, DomainError>,
}

/// The columns a kind's rows may have, from the shape of its create body.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Top-level names, and whether the field is text (taken as it is).
    top: BTreeMap<String, bool>,
    /// Fields that hold objects (dotted columns may name keys inside).
    objects: Vec<String>,
}

impl Columns {
    /// The columns of a body of `shape`, plus `extra` names the server
    /// sets (the id, times, read-only fields: ignored on import, accepted
    /// so that an export imports as it is).
    pub fn of(shape: &Shape, extra: &[&str]) -> Self {
        let mut columns = Columns::default();
        for (name, field) in properties(shape) {
            let is_text = field.types.contains(&JsonType::String)
                && field
                    .types
                    .iter()
                    .all(|kind| matches!(kind, JsonType::String | JsonType::Null));
            columns.top.insert(name.clone(), is_text);
            if field.types.contains(&JsonType::Object) {
                columns.objects.push(name.clone());
            }
        }
        for name in extra {
            columns.top.entry((*name).to_owned()).or_insert(false);
        }
        columns
    }

    /// Every top-level name, for messages.
    pub fn names(&self) -> Vec<&str> {
        self.top.keys().map(String::as_str).collect()
    }

    fn target(&self, column: usize, name: &str) -> Result<Target, FileError> {
        if let Some(is_text) = self.top.get(name) {
            return Ok(Target::Top {
                name: name.to_owned(),
                is_text: *is_text,
            });
        }
        if let Some((object, key)) = name.split_once('.')
            && self.objects.iter().any(|known| known == object)
            && !key.is_empty()
        {
            return Ok(Target::Nested {
                object: object.to_owned(),
                key: key.to_owned(),
            });
        }
        let hint = if self.objects.is_empty() {
            String::new()
        } else {
            format!(
                "; keys inside {} may be named as FIELD.KEY",
                self.objects.join(", ")
            )
        };
        Err(FileError::at(
            1,
            format!(
                "column {} ({name:?}) is not a field of this kind; the columns may be: {}{hint}",
                column + 1,
                self.names().join(", ")
            ),
        ))
    }
}

/// The properties of an object shape, including those of the shapes it
/// combines (a body with "at least one of" rules is an `allOf`).
fn properties(shape: &Shape) -> Vec<&(String, Shape)> {
    let mut all: Vec<&(String, Shape)> = shape.properties.iter().collect();
    for part in shape
        .all_of
        .iter()
        .chain(&shape.any_of)
        .chain(&shape.one_of)
    {
        for property in properties(part) {
            if !all.iter().any(|(name, _)| *name == property.0) {
                all.push(property);
            }
        }
    }
    all
}

#[derive(Debug, Clone)]
enum Target {
    Top { name: String, is_text: bool },
    Nested { object: String, key: String },
}

/// Counts the bytes read (for progress) and stops a CSV row that grows
/// past [`MAX_ROW_BYTES`] before it can fill memory.
struct Counted<R> {
    inner: R,
    read: Arc<AtomicU64>,
    /// Where the current row started, set by the reader after each row;
    /// `None` where rows are cut by lines instead (NDJSON).
    row_start: Option<Arc<AtomicU64>>,
}

/// The CSV reader buffers ahead of the row it parses; this much more than
/// the row limit may be read before a row counts as too long.
const READ_AHEAD: u64 = 64 * 1024;

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if let Some(start) = &self.row_start {
            let pending = self.read.load(Ordering::Relaxed) - start.load(Ordering::Relaxed);
            if pending > MAX_ROW_BYTES + READ_AHEAD {
                return Err(io::Error::other(RowTooLong));
            }
        }
        let count = self.inner.read(buffer)?;
        self.read.fetch_add(count as u64, Ordering::Relaxed);
        Ok(count)
    }
}

#[derive(Debug)]
struct RowTooLong;

impl fmt::Display for RowTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a row longer than {MAX_ROW_BYTES} bytes")
    }
}

impl std::error::Error for RowTooLong {}

/// The rows of a file, in order.
pub struct RowReader {
    inner: Inner,
    /// Bytes read from the file so far (for a progress bar).
    pub bytes_read: Arc<AtomicU64>,
}

enum Inner {
    Csv {
        reader: csv::Reader<Counted<Box<dyn Read + Send>>>,
        targets: Vec<Target>,
        row_start: Arc<AtomicU64>,
        record: csv::ByteRecord,
        next_line: u64,
    },
    Ndjson {
        reader: io::BufReader<Counted<Box<dyn Read + Send>>>,
        line: u64,
        buffer: Vec<u8>,
    },
}

impl RowReader {
    /// Opens `input` as `format`; a CSV's header is read and checked
    /// against `columns` here.
    pub fn open(
        input: Box<dyn Read + Send>,
        format: Format,
        columns: &Columns,
    ) -> Result<Self, FileError> {
        let bytes_read = Arc::new(AtomicU64::new(0));
        let inner = match format {
            Format::Csv => {
                let row_start = Arc::new(AtomicU64::new(0));
                let counted = Counted {
                    inner: input,
                    read: bytes_read.clone(),
                    row_start: Some(row_start.clone()),
                };
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(counted);
                let mut header = csv::ByteRecord::new();
                let has_header = reader
                    .read_byte_record(&mut header)
                    .map_err(|error| csv_error(error, 1))?;
                if !has_header {
                    return Err(FileError {
                        line: None,
                        message:
                            "the file is empty: a CSV file needs a header row naming its columns"
                                .into(),
                    });
                }
                row_start.store(reader.position().byte(), Ordering::Relaxed);
                let next_line = reader.position().line().max(2);
                let targets = header_targets(&header, columns)?;
                Inner::Csv {
                    reader,
                    targets,
                    row_start,
                    record: csv::ByteRecord::new(),
                    next_line,
                }
            }
            Format::Ndjson => Inner::Ndjson {
                reader: io::BufReader::with_capacity(
                    256 * 1024,
                    Counted {
                        inner: input,
                        read: bytes_read.clone(),
                        row_start: None,
                    },
                ),
                line: 0,
                buffer: Vec::new(),
            },
        };
        Ok(Self { inner, bytes_read })
    }
}

fn header_targets(header: &csv::ByteRecord, columns: &Columns) -> Result<Vec<Target>, FileError> {
    let mut targets = Vec::with_capacity(header.len());
    let mut seen = std::collections::HashSet::new();
    for (index, cell) in header.iter().enumerate() {
        let name = std::str::from_utf8(cell).map_err(|_| {
            FileError::at(
                1,
                format!(
                    "column {} of the header is not UTF-8 text; is this a CSV file?",
                    index + 1
                ),
            )
        })?;
        // A UTF-8 byte-order mark is what some spreadsheets put first.
        let name = name.trim_start_matches('\u{feff}').trim();
        if name.contains('\0') {
            return Err(FileError::at(
                1,
                "the header holds NUL bytes; is this a CSV file?",
            ));
        }
        if !seen.insert(name.to_owned()) {
            return Err(FileError::at(
                1,
                format!(
                    "column {} ({name:?}) appears twice in the header",
                    index + 1
                ),
            ));
        }
        targets.push(columns.target(index, name)?);
    }
    Ok(targets)
}

fn csv_error(error: csv::Error, line: u64) -> FileError {
    let line = error
        .position()
        .map_or(line, |position| position.line().max(1));
    if let csv::ErrorKind::Io(io_error) = error.kind()
        && io_error
            .get_ref()
            .is_some_and(|inner| inner.is::<RowTooLong>())
    {
        return FileError::at(
            line,
            format!(
                "a row longer than {} MiB (rows have the API's body limit); the import stops here: fix or remove that row and run the same command again to resume",
                MAX_ROW_BYTES / (1024 * 1024)
            ),
        );
    }
    FileError::at(line, format!("cannot read the file: {error}"))
}

impl Iterator for RowReader {
    type Item = Result<Row, FileError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Csv {
                reader,
                targets,
                row_start,
                record,
                next_line,
            } => {
                let result = reader.read_byte_record(record);
                row_start.store(reader.position().byte(), Ordering::Relaxed);
                match result {
                    Ok(false) => None,
                    Err(error) => Some(Err(csv_error(error, *next_line))),
                    Ok(true) => {
                        let line = record.position().map_or(*next_line, |p| p.line());
                        // A quoted cell may span lines: the next row starts
                        // where the reader stands now.
                        *next_line = reader.position().line().max(line + 1);
                        Some(Ok(Row {
                            line,
                            fields: csv_row(record, targets),
                        }))
                    }
                }
            }
            Inner::Ndjson {
                reader,
                line,
                buffer,
            } => loop {
                *line += 1;
                match read_line(reader, buffer) {
                    Err(error) => {
                        return Some(Err(FileError::at(
                            *line,
                            format!("cannot read the file: {error}"),
                        )));
                    }
                    Ok(Line::End) => return None,
                    Ok(Line::TooLong) => {
                        return Some(Ok(Row {
                            line: *line,
                            fields: Err(whole_row(format!(
                                "the line is longer than {} MiB (rows have the API's body limit)",
                                MAX_ROW_BYTES / (1024 * 1024)
                            ))),
                        }));
                    }
                    Ok(Line::Read) => {
                        if buffer.iter().all(u8::is_ascii_whitespace) {
                            continue;
                        }
                        return Some(Ok(Row {
                            line: *line,
                            fields: ndjson_row(buffer),
                        }));
                    }
                }
            },
        }
    }
}

enum Line {
    Read,
    TooLong,
    End,
}

/// Reads one line into `buffer` (without its end), keeping at most
/// [`MAX_ROW_BYTES`] of it; a longer line is skipped to its end.
fn read_line(reader: &mut impl BufRead, buffer: &mut Vec<u8>) -> io::Result<Line> {
    buffer.clear();
    let mut too_long = false;
    let mut any = false;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        any = true;
        let (chunk, found) = match available.iter().position(|byte| *byte == b'\n') {
            Some(end) => (&available[..end], Some(end)),
            None => (available, None),
        };
        if !too_long {
            if (buffer.len() + chunk.len()) as u64 > MAX_ROW_BYTES {
                too_long = true;
                buffer.clear();
            } else {
                buffer.extend_from_slice(chunk);
            }
        }
        let consumed = found.map_or(available.len(), |end| end + 1);
        reader.consume(consumed);
        if found.is_some() {
            break;
        }
    }
    if !any {
        return Ok(Line::End);
    }
    if buffer.last() == Some(&b'\r') {
        buffer.pop();
    }
    Ok(if too_long { Line::TooLong } else { Line::Read })
}

/// A CSV row with another number of cells than its header.
pub fn ragged_row(cells: usize, columns: usize) -> DomainError {
    whole_row(format!(
        "the row has {cells} cells; the header has {columns}"
    ))
}

fn whole_row(message: String) -> DomainError {
    DomainError::Invalid(vec![FieldError {
        path: FieldPath::root(),
        message,
    }])
}

fn ndjson_row(line: &[u8]) -> Result<Map<String, Value>, DomainError> {
    if std::str::from_utf8(line).is_err() {
        return Err(whole_row("the line is not UTF-8 text".into()));
    }
    match parse_json_strictly(line) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(whole_row("the line is JSON but not an object".into())),
        Err(error) => Err(whole_row(format!("the line is not JSON: {error}"))),
    }
}

fn csv_row(
    record: &csv::ByteRecord,
    targets: &[Target],
) -> Result<Map<String, Value>, DomainError> {
    if record.len() != targets.len() {
        return Err(ragged_row(record.len(), targets.len()));
    }
    let mut object = Map::new();
    let mut errors = Vec::new();
    for (index, (cell, target)) in record.iter().zip(targets).enumerate() {
        let Ok(text) = std::str::from_utf8(cell) else {
            let name = match target {
                Target::Top { name, .. } => name.clone(),
                Target::Nested { object, key } => format!("{object}.{key}"),
            };
            errors.push(FieldError {
                path: FieldPath::root().key(&name),
                message: format!("column {} is not UTF-8 text", index + 1),
            });
            continue;
        };
        if text.is_empty() {
            continue;
        }
        match target {
            Target::Top {
                name,
                is_text: true,
            } => {
                object.insert(name.clone(), Value::String(text.to_owned()));
            }
            Target::Top {
                name,
                is_text: false,
            } => {
                object.insert(name.clone(), json_or_text(text));
            }
            Target::Nested { object: field, key } => {
                let entry = object
                    .entry(field.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(inner) = entry {
                    inner.insert(key.clone(), json_or_text(text));
                } else {
                    errors.push(FieldError {
                        path: FieldPath::root().key(field),
                        message: format!(
                            "column {} sets a key of {field}, which another column sets whole",
                            index + 1
                        ),
                    });
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(object)
    } else {
        Err(DomainError::Invalid(errors))
    }
}

fn json_or_text(text: &str) -> Value {
    parse_json_strictly(text.as_bytes()).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Writes records (views as JSON objects) to a file, one row each.
pub enum RowWriter<W: Write> {
    Ndjson(W),
    /// CSV, with the header's columns in order.
    Csv(Box<csv::Writer<W>>, Vec<String>),
}

impl<W: Write> RowWriter<W> {
    /// A writer of `format`; CSV writes `columns` as its header first.
    pub fn new(output: W, format: Format, columns: Vec<String>) -> io::Result<Self> {
        Ok(match format {
            Format::Ndjson => RowWriter::Ndjson(output),
            Format::Csv => {
                let mut writer = csv::Writer::from_writer(output);
                writer.write_record(&columns).map_err(io::Error::other)?;
                RowWriter::Csv(Box::new(writer), columns)
            }
        })
    }

    /// Writes one record.
    pub fn write(&mut self, record: &Map<String, Value>) -> io::Result<()> {
        match self {
            RowWriter::Ndjson(output) => {
                serde_json::to_writer(&mut *output, record)?;
                output.write_all(b"\n")
            }
            RowWriter::Csv(writer, columns) => {
                let cells = columns.iter().map(|column| match record.get(column) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(text)) => text.clone(),
                    Some(other) => other.to_string(),
                });
                writer.write_record(cells).map_err(io::Error::other)
            }
        }
    }

    /// Flushes and hands back the output.
    pub fn finish(self) -> io::Result<W> {
        match self {
            RowWriter::Ndjson(mut output) => {
                output.flush()?;
                Ok(output)
            }
            RowWriter::Csv(writer, _) => writer
                .into_inner()
                .map_err(|error| io::Error::other(error.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::shape;

    /// A row's line and its object, or its errors as `path: message`.
    type ReadRow = (u64, Result<Value, Vec<String>>);

    fn columns() -> Columns {
        let mut body = shape::object();
        body.properties = vec![
            ("name".into(), shape::string()),
            ("count".into(), shape::integer(0..=10)),
            ("props".into(), shape::object()),
        ];
        Columns::of(&body, &["id"])
    }

    fn read(text: &[u8], format: Format) -> Result<Vec<ReadRow>, FileError> {
        let reader = RowReader::open(Box::new(io::Cursor::new(text.to_vec())), format, &columns())?;
        reader
            .map(|row| {
                row.map(|row| {
                    (
                        row.line,
                        row.fields.map(Value::Object).map_err(|error| {
                            crate::core::import::row_errors(&error)
                                .iter()
                                .map(|e| format!("{}: {}", e.path, e.message))
                                .collect()
                        }),
                    )
                })
            })
            .collect()
    }

    #[test]
    fn csv_cells_become_typed_values_and_dotted_columns_nest() {
        let rows = read(
            b"name,count,props.plan,props.seats,id\n007,3,pro,5,x\n\"two\nlines\",,,,\n",
            Format::Csv,
        )
        .expect("reads");
        assert_eq!(
            rows,
            vec![
                (
                    2,
                    Ok(
                        serde_json::json!({"name": "007", "count": 3, "props": {"plan": "pro", "seats": 5}, "id": "x"})
                    )
                ),
                (3, Ok(serde_json::json!({"name": "two\nlines"}))),
            ]
        );
    }

    #[test]
    fn a_ragged_or_non_utf8_row_is_rejected_and_reading_goes_on() {
        let rows = read(b"name,count\na\nb,\xff\nc,1\n", Format::Csv).expect("reads");
        assert_eq!(
            rows[0],
            (
                2,
                Err(vec!["(body): the row has 1 cells; the header has 2".into()])
            )
        );
        assert_eq!(
            rows[1],
            (3, Err(vec!["count: column 2 is not UTF-8 text".into()]))
        );
        assert_eq!(
            rows[2],
            (4, Ok(serde_json::json!({"name": "c", "count": 1})))
        );
    }

    #[test]
    fn the_header_is_checked_before_any_row() {
        let unknown = read(b"name,colour\n", Format::Csv).expect_err("unknown column");
        assert_eq!(unknown.line, Some(1));
        assert!(
            unknown
                .message
                .starts_with("column 2 (\"colour\") is not a field"),
            "{unknown}"
        );
        let twice = read(b"name,name\n", Format::Csv).expect_err("repeated");
        assert!(twice.message.contains("appears twice"), "{twice}");
        let binary = read(b"\x89PNG\r\n\x1a\n\0\0", Format::Csv).expect_err("binary");
        assert!(binary.message.contains("not UTF-8"), "{binary}");
        let empty = read(b"", Format::Csv).expect_err("empty");
        assert!(empty.message.contains("empty"), "{empty}");
        assert_eq!(
            read(b"name,count\n", Format::Csv).expect("header only"),
            vec![]
        );
    }

    #[test]
    fn an_oversized_csv_row_stops_the_file_naming_its_line() {
        let mut text = b"name\nfirst\n\"".to_vec();
        text.extend(std::iter::repeat_n(
            b'a',
            (MAX_ROW_BYTES + 2 * READ_AHEAD) as usize,
        ));
        text.extend(b"\"\n");
        let reader = RowReader::open(Box::new(io::Cursor::new(text)), Format::Csv, &columns())
            .expect("opens");
        let results: Vec<_> = reader.collect();
        assert!(results[0].is_ok());
        let error = results[1].as_ref().expect_err("too long");
        assert_eq!(error.line, Some(3));
        assert!(error.message.contains("longer than 1 MiB"), "{error}");
    }

    #[test]
    fn ndjson_lines_are_objects_and_bad_lines_only_reject_themselves() {
        let mut text = b"{\"name\":\"a\"}\n\n[1]\n{\"name\":\"b\",\"name\":\"c\"}\n\xff\n".to_vec();
        text.extend(std::iter::repeat_n(b' ', MAX_ROW_BYTES as usize + 10));
        text.extend(b"\n{\"name\":\"last\"}");
        let rows = read(&text, Format::Ndjson).expect("reads");
        assert_eq!(rows[0], (1, Ok(serde_json::json!({"name": "a"}))));
        assert_eq!(rows[1].0, 3);
        assert!(rows[1].1.is_err());
        assert!(format!("{:?}", rows[2].1).contains("duplicate key"));
        assert!(format!("{:?}", rows[3].1).contains("not UTF-8"));
        assert!(format!("{:?}", rows[4].1).contains("longer than 1 MiB"));
        assert_eq!(rows[5], (7, Ok(serde_json::json!({"name": "last"}))));
    }

    #[test]
    fn csv_export_writes_text_raw_and_other_values_as_json() {
        let mut writer = RowWriter::new(
            Vec::new(),
            Format::Csv,
            vec!["name".into(), "count".into(), "props".into()],
        )
        .expect("header");
        let record = serde_json::json!({"name": "a,b", "count": 2, "props": {"k": [1]}});
        writer
            .write(record.as_object().expect("object"))
            .expect("row");
        let text = String::from_utf8(writer.finish().expect("done")).expect("utf-8");
        assert_eq!(text, "name,count,props\n\"a,b\",2,\"{\"\"k\"\":[1]}\"\n");
    }
}
