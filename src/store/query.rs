//! Record queries run by the database: conditions on a record's id, times
//! or top-level body fields, an order, and a page. Both backends render the
//! same [`RecordQuery`] to SQL here (only the JSON accessors and the
//! placeholder style differ), so filtering, sorting, counting and paging
//! never load a whole kind into memory.
//!
//! Field names come from the core's fixed lists, never from a request, and
//! are still checked to be plain identifiers before they reach SQL; every
//! value is a bound parameter.

/// Where a condition or sort key looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    /// The record id, compared as an integer (numeric-string ids).
    NumericId,
    CreatedAt,
    UpdatedAt,
    /// A top-level string field of the body.
    Text(&'static str),
    /// A top-level field holding a numeric string, compared as a number.
    Number(&'static str),
    /// A top-level boolean field.
    Bool(&'static str),
    /// A top-level array of strings: conditions test membership.
    Members(&'static str),
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    Nin,
}

/// A value to compare with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Text(String),
    Integer(i64),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub column: Column,
    pub compare: Compare,
    /// One value, or several for `In`/`Nin`.
    pub operands: Vec<Operand>,
}

/// Conditions (all must hold), sort keys (`true` = descending; ties are
/// broken by id), and a page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordQuery {
    pub conditions: Vec<Condition>,
    pub order: Vec<(Column, bool)>,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Sqlite,
    Postgres,
}

/// SQL text after `FROM records WHERE workspace_id = … AND kind = …`, and
/// the values to bind, in order, after the workspace and kind.
pub(super) struct Rendered {
    pub filter: String,
    pub order: String,
    /// The same order, backwards (to read a page from the end).
    pub reversed: String,
    pub binds: Vec<Operand>,
}

struct Renderer {
    dialect: Dialect,
    binds: Vec<Operand>,
    /// Placeholders already used before ours (workspace and kind).
    offset: usize,
}

pub(super) fn identifier(name: &str) -> Result<&str, String> {
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if plain {
        Ok(name)
    } else {
        Err(format!("not a plain field name: {name:?}"))
    }
}

impl Renderer {
    fn placeholder(&mut self, operand: Operand) -> String {
        self.binds.push(operand);
        match self.dialect {
            Dialect::Sqlite => format!("?{}", self.offset + self.binds.len()),
            Dialect::Postgres => format!("${}", self.offset + self.binds.len()),
        }
    }

    fn expression(&self, column: &Column) -> Result<String, String> {
        Ok(match (self.dialect, column) {
            (Dialect::Sqlite, Column::NumericId) => "CAST(id AS INTEGER)".to_owned(),
            (Dialect::Postgres, Column::NumericId) => {
                "(CASE WHEN id ~ '^[0-9]{1,30}$' THEN CAST(id AS NUMERIC) END)".to_owned()
            }
            (_, Column::CreatedAt) => "created_at".to_owned(),
            (_, Column::UpdatedAt) => "updated_at".to_owned(),
            (Dialect::Sqlite, Column::Text(key)) => {
                format!("json_extract(body, '$.{}')", identifier(key)?)
            }
            (Dialect::Postgres, Column::Text(key)) => format!("(body->>'{}')", identifier(key)?),
            (Dialect::Sqlite, Column::Number(key)) => {
                format!(
                    "CAST(json_extract(body, '$.{}') AS INTEGER)",
                    identifier(key)?
                )
            }
            (Dialect::Postgres, Column::Number(key)) => {
                let key = identifier(key)?;
                format!(
                    "(CASE WHEN body->>'{key}' ~ '^[0-9]{{1,30}}$' THEN CAST(body->>'{key}' AS NUMERIC) END)"
                )
            }
            (Dialect::Sqlite, Column::Bool(key)) => {
                format!("json_extract(body, '$.{}')", identifier(key)?)
            }
            (Dialect::Postgres, Column::Bool(key)) => {
                format!("CAST(body->>'{}' AS BOOLEAN)", identifier(key)?)
            }
            (_, Column::Members(key)) => {
                return Err(format!(
                    "{key} is a list; it can only be tested for membership"
                ));
            }
        })
    }

    /// Binds an operand in the type the column compares in.
    fn operand(&mut self, column: &Column, operand: &Operand) -> String {
        let operand = match (self.dialect, column, operand) {
            // SQLite's json_extract gives 1/0 for JSON booleans.
            (Dialect::Sqlite, Column::Bool(_), Operand::Bool(flag)) => {
                Operand::Integer(i64::from(*flag))
            }
            _ => operand.clone(),
        };
        let placeholder = self.placeholder(operand.clone());
        match (self.dialect, column, &operand) {
            (Dialect::Postgres, Column::NumericId | Column::Number(_), Operand::Integer(_)) => {
                format!("CAST({placeholder} AS NUMERIC)")
            }
            _ => placeholder,
        }
    }

    fn membership(&mut self, key: &str, operands: &[Operand]) -> Result<String, String> {
        let key = identifier(key)?;
        let values: Vec<String> = operands
            .iter()
            .map(|operand| self.placeholder(operand.clone()))
            .collect();
        Ok(match self.dialect {
            Dialect::Sqlite => format!(
                "EXISTS (SELECT 1 FROM json_each(body, '$.{key}') WHERE value IN ({}))",
                values.join(", ")
            ),
            Dialect::Postgres => format!(
                "EXISTS (SELECT 1 FROM jsonb_array_elements_text(body->'{key}') AS member WHERE member IN ({}))",
                values.join(", ")
            ),
        })
    }

    fn condition(&mut self, condition: &Condition) -> Result<String, String> {
        if let Column::Members(key) = &condition.column {
            let test = self.membership(key, &condition.operands)?;
            return match condition.compare {
                Compare::Eq | Compare::In => Ok(test),
                Compare::Neq | Compare::Nin => Ok(format!("NOT {test}")),
                _ => Err(format!("{key} is a list: use eq, neq, in or nin")),
            };
        }
        let expression = self.expression(&condition.column)?;
        let first = condition
            .operands
            .first()
            .ok_or_else(|| "a condition needs a value".to_owned())?;
        Ok(match condition.compare {
            Compare::Eq => format!("{expression} = {}", self.operand(&condition.column, first)),
            // A missing value is "not equal" to anything.
            Compare::Neq => format!(
                "({expression} IS NULL OR {expression} <> {})",
                self.operand(&condition.column, first)
            ),
            Compare::Gt => format!("{expression} > {}", self.operand(&condition.column, first)),
            Compare::Gte => format!("{expression} >= {}", self.operand(&condition.column, first)),
            Compare::Lt => format!("{expression} < {}", self.operand(&condition.column, first)),
            Compare::Lte => format!("{expression} <= {}", self.operand(&condition.column, first)),
            Compare::In | Compare::Nin => {
                let values: Vec<String> = condition
                    .operands
                    .iter()
                    .map(|operand| self.operand(&condition.column, operand))
                    .collect();
                let list = values.join(", ");
                if condition.compare == Compare::In {
                    format!("{expression} IN ({list})")
                } else {
                    format!("({expression} IS NULL OR {expression} NOT IN ({list}))")
                }
            }
        })
    }
}

/// Renders `query` for `dialect`; `used` placeholders come before ours.
pub(super) fn render(
    query: &RecordQuery,
    dialect: Dialect,
    used: usize,
) -> Result<Rendered, String> {
    let mut renderer = Renderer {
        dialect,
        binds: Vec::new(),
        offset: used,
    };
    let mut filter = String::new();
    for condition in &query.conditions {
        filter.push_str(" AND ");
        filter.push_str(&renderer.condition(condition)?);
    }
    let mut keys = Vec::new();
    for (column, descending) in &query.order {
        let expression = match column {
            // A list sorts by its first member.
            Column::Members(key) => match dialect {
                Dialect::Sqlite => format!("json_extract(body, '$.{}[0]')", identifier(key)?),
                Dialect::Postgres => format!("(body->'{}'->>0)", identifier(key)?),
            },
            other => renderer.expression(other)?,
        };
        keys.push((expression, *descending, true));
    }
    keys.push((renderer.expression(&Column::NumericId)?, false, false));
    let order_by = |reverse: bool| {
        let keys: Vec<String> = keys
            .iter()
            .map(|(expression, descending, nulls)| {
                // Missing values sort first, as the empty string would.
                match (descending ^ reverse, nulls) {
                    (true, true) => format!("{expression} DESC NULLS LAST"),
                    (false, true) => format!("{expression} ASC NULLS FIRST"),
                    (true, false) => format!("{expression} DESC"),
                    (false, false) => format!("{expression} ASC"),
                }
            })
            .collect();
        format!(" ORDER BY {}", keys.join(", "))
    };
    Ok(Rendered {
        filter,
        order: order_by(false),
        reversed: order_by(true),
        binds: renderer.binds,
    })
}

/// The statements that run a query: first the count, then the page, whose
/// statement depends on the count. Parameters: the workspace, the kind,
/// then [`Statements::binds`].
pub(super) struct Statements {
    /// The number of records that match, over all pages: counted, or read
    /// where the backend keeps it.
    pub count: String,
    pub binds: Vec<Operand>,
    scope: String,
    rendered: Rendered,
    offset: u64,
    limit: u64,
}

const RECORD_COLUMNS: &str = "kind, id, version, lookup, body, created_at, updated_at";

/// The body fields whose records SQLite counts per value (migration 0006):
/// the kind, and the field with the type its filters compare as.
const SQLITE_VALUE_COUNTS: &[(&str, Column)] = &[
    ("hood_profile", Column::Number("organization_id")),
    ("hood_profile", Column::Text("email")),
];

/// The statement that reads a total SQLite keeps (migrations 0005 and
/// 0006), if it keeps the one `conditions` need: all records of a kind, or
/// those with one value of a counted field.
fn kept_total(kind: &str, conditions: &[Condition]) -> Option<String> {
    match conditions {
        [] => Some(
            "SELECT COALESCE((SELECT records FROM record_counts \
             WHERE workspace_id = ?1 AND kind = ?2), 0)"
                .to_owned(),
        ),
        [
            Condition {
                column: column @ (Column::Number(field) | Column::Text(field)),
                compare: Compare::Eq,
                operands,
            },
        ] if operands.len() == 1
            && SQLITE_VALUE_COUNTS
                .iter()
                .any(|(counted_kind, counted)| *counted_kind == kind && counted == column) =>
        {
            Some(format!(
                "SELECT COALESCE((SELECT records FROM record_value_counts \
             WHERE workspace_id = ?1 AND kind = ?2 AND field = '{}' AND value = ?3), 0)",
                identifier(field).ok()?
            ))
        }
        _ => None,
    }
}

/// The statements of `query` over records of `kind`, for `dialect`.
pub(super) fn statements(
    query: &RecordQuery,
    kind: &str,
    dialect: Dialect,
) -> Result<Statements, String> {
    let rendered = render(query, dialect, 2)?;
    let scope = match dialect {
        Dialect::Sqlite => "workspace_id = ?1 AND kind = ?2",
        Dialect::Postgres => "workspace_id = $1 AND kind = $2",
    };
    let kept = match dialect {
        Dialect::Sqlite => kept_total(kind, &query.conditions),
        Dialect::Postgres => None,
    };
    let count = kept.unwrap_or_else(|| {
        format!(
            "SELECT COUNT(*) FROM records WHERE {scope}{}",
            rendered.filter
        )
    });
    Ok(Statements {
        count,
        binds: rendered.binds.clone(),
        scope: scope.to_owned(),
        rendered,
        offset: query.offset,
        limit: query.limit,
    })
}

impl Statements {
    /// The page's statement, given how many records match in all.
    ///
    /// The page is found in two steps (a "deferred join"): the ids of the
    /// page first, read from an index that holds the sort key and the id,
    /// then those records by primary key. Skipping entries of a narrow
    /// index is cheap; skipping whole records, bodies and all, made a far
    /// page cost many times the first. And a page in the second half is
    /// read from the end, in the reverse order, so the last page costs what
    /// the first does (only pages in the middle skip many entries).
    pub fn page(&self, total: u64) -> String {
        let end = self.offset.saturating_add(self.limit).min(total);
        let after_page = total - end;
        let (inner_order, limit, offset) = if after_page < self.offset {
            (
                &self.rendered.reversed,
                end.saturating_sub(self.offset),
                after_page,
            )
        } else {
            (&self.rendered.order, self.limit, self.offset)
        };
        // CROSS JOIN keeps SQLite from turning the join around (scanning
        // records in order and probing the page); PostgreSQL reads it as
        // an inner join.
        format!(
            "WITH page AS (SELECT id AS page_id FROM records WHERE {scope}{filter}{inner_order} \
             LIMIT {limit} OFFSET {offset}) \
             SELECT {RECORD_COLUMNS} FROM page CROSS JOIN records \
             WHERE {scope} AND id = page_id{order}",
            scope = self.scope,
            filter = self.rendered.filter,
            order = self.rendered.order,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_render_with_placeholders_after_the_fixed_ones() {
        let query = RecordQuery {
            conditions: vec![
                Condition {
                    column: Column::Number("organization_id"),
                    compare: Compare::Eq,
                    operands: vec![Operand::Integer(1007)],
                },
                Condition {
                    column: Column::Members("lists"),
                    compare: Compare::In,
                    operands: vec![Operand::Text("1".into()), Operand::Text("2".into())],
                },
                Condition {
                    column: Column::Text("email"),
                    compare: Compare::Neq,
                    operands: vec![Operand::Text("a@b.c".into())],
                },
            ],
            order: vec![(Column::CreatedAt, true)],
            offset: 0,
            limit: 20,
        };
        let rendered = render(&query, Dialect::Sqlite, 2).expect("renders");
        assert_eq!(
            rendered.filter,
            " AND CAST(json_extract(body, '$.organization_id') AS INTEGER) = ?3 \
             AND EXISTS (SELECT 1 FROM json_each(body, '$.lists') WHERE value IN (?4, ?5)) \
             AND (json_extract(body, '$.email') IS NULL OR json_extract(body, '$.email') <> ?6)"
        );
        assert_eq!(
            rendered.order,
            " ORDER BY created_at DESC NULLS LAST, CAST(id AS INTEGER) ASC"
        );
        assert_eq!(
            rendered.reversed,
            " ORDER BY created_at ASC NULLS FIRST, CAST(id AS INTEGER) DESC"
        );
        assert_eq!(rendered.binds.len(), 4);
        let postgres = render(&query, Dialect::Postgres, 2).expect("renders");
        assert!(
            postgres
                .filter
                .contains("CAST(body->>'organization_id' AS NUMERIC) END) = CAST($3 AS NUMERIC)")
        );
    }

    #[test]
    fn pages_select_ids_first_and_counts_are_read_when_kept() {
        let unfiltered = RecordQuery {
            offset: 40,
            limit: 20,
            ..RecordQuery::default()
        };
        let kept = statements(&unfiltered, "hood_profile", Dialect::Sqlite).expect("renders");
        assert!(kept.count.contains("FROM record_counts"));
        assert_eq!(
            kept.page(1000),
            "WITH page AS (SELECT id AS page_id FROM records \
             WHERE workspace_id = ?1 AND kind = ?2 ORDER BY CAST(id AS INTEGER) ASC \
             LIMIT 20 OFFSET 40) \
             SELECT kind, id, version, lookup, body, created_at, updated_at \
             FROM page CROSS JOIN records \
             WHERE workspace_id = ?1 AND kind = ?2 AND id = page_id \
             ORDER BY CAST(id AS INTEGER) ASC"
        );
        // Rows 40..60 of 70 are read as rows 10..30 from the end.
        assert!(
            kept.page(70)
                .contains("ORDER BY CAST(id AS INTEGER) DESC LIMIT 20 OFFSET 10)")
        );
        // Rows 40..50 of 50: the last ten, a short page.
        assert!(
            kept.page(50)
                .contains("ORDER BY CAST(id AS INTEGER) DESC LIMIT 10 OFFSET 0)")
        );
        // Past the end: nothing.
        assert!(kept.page(30).contains("LIMIT 0 OFFSET 0)"));
        let counted = statements(&unfiltered, "hood_profile", Dialect::Postgres).expect("renders");
        assert_eq!(
            counted.count,
            "SELECT COUNT(*) FROM records WHERE workspace_id = $1 AND kind = $2"
        );
        let filtered = RecordQuery {
            conditions: vec![Condition {
                column: Column::Number("organization_id"),
                compare: Compare::Eq,
                operands: vec![Operand::Integer(7)],
            }],
            ..unfiltered
        };
        let kept = statements(&filtered, "hood_profile", Dialect::Sqlite).expect("renders");
        assert!(kept.count.contains(
            "FROM record_value_counts WHERE workspace_id = ?1 AND kind = ?2 \
             AND field = 'organization_id' AND value = ?3"
        ));
        // Another kind's organization_id is not counted by value.
        assert!(
            statements(&filtered, "other_kind", Dialect::Sqlite)
                .expect("renders")
                .count
                .starts_with("SELECT COUNT(*)")
        );
        // Anything else is counted.
        let ranged = RecordQuery {
            conditions: vec![Condition {
                column: Column::Number("organization_id"),
                compare: Compare::Gt,
                operands: vec![Operand::Integer(7)],
            }],
            ..RecordQuery::default()
        };
        assert_eq!(
            statements(&ranged, "hood_profile", Dialect::Sqlite)
                .expect("renders")
                .count,
            "SELECT COUNT(*) FROM records WHERE workspace_id = ?1 AND kind = ?2 \
             AND CAST(json_extract(body, '$.organization_id') AS INTEGER) > ?3"
        );
    }

    #[test]
    fn field_names_must_be_plain() {
        let query = RecordQuery {
            conditions: vec![Condition {
                column: Column::Text("email') OR 1=1 --"),
                compare: Compare::Eq,
                operands: vec![Operand::Text("x".into())],
            }],
            ..RecordQuery::default()
        };
        assert!(render(&query, Dialect::Sqlite, 2).is_err());
    }
}
