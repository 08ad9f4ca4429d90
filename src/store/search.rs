//! Searches by term: which records of a kind have, among the normalised
//! values the core indexed for them (`record_terms`, written with each
//! record by [`super::WriteTx::set_terms`]), a term of a field that matches
//! a value or a prefix, optionally through a linked record (a person's
//! company). Both backends render the same [`TermQuery`] to SQL here, so a
//! search is index range scans over `record_terms`, never a scan of bodies.
//!
//! Field names come from the core's fixed lists; every value is a bound
//! parameter.

use super::query::{Dialect, identifier};

/// How a term must look to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TermMatch {
    /// The term is exactly this.
    Exact(String),
    /// The term starts with this.
    Prefix(String),
}

/// The terms of another kind a test looks at instead of the record's own:
/// the record's `link` field holds the id of a record of kind `kind`
/// (a person's `company` term holds its company's id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    pub link: &'static str,
    pub kind: &'static str,
}

/// Whether a record (or the record it links to) has a term of `field`
/// matching any of `matches`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermTest {
    pub via: Option<Via>,
    pub field: &'static str,
    pub matches: Vec<TermMatch>,
}

/// A condition on a record's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Test(TermTest),
    /// Every one holds (none at all: true).
    All(Vec<Condition>),
    /// At least one holds (none at all: false).
    Any(Vec<Condition>),
    Not(Box<Condition>),
}

/// Records matching `condition` (every record of the kind if `None`), in
/// id order, after the id `after` (keyset paging), skipping `offset`, at
/// most `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TermQuery {
    pub condition: Option<Condition>,
    pub after: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// The rendered statements and their text parameters, which follow the
/// workspace and the kind (the first two placeholders).
pub(super) struct RenderedSearch {
    /// The record columns of the page, in id order.
    pub page: String,
    /// How many records match in all (ignoring `after`, offset and limit).
    pub count: String,
    pub binds: Vec<String>,
    /// How many of `binds` the count takes (those before the keyset's).
    pub count_binds: usize,
}

/// The largest character: a prefix's range ends before `prefix` + this.
const PREFIX_END: char = '\u{10FFFF}';

struct Renderer {
    dialect: Dialect,
    binds: Vec<String>,
}

impl Renderer {
    fn bind(&mut self, value: String) -> String {
        self.binds.push(value);
        // The workspace and the kind are the first two.
        let position = self.binds.len() + 2;
        match self.dialect {
            Dialect::Sqlite => format!("?{position}"),
            Dialect::Postgres => format!("${position}"),
        }
    }

    fn placeholder(&self, position: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("?{position}"),
            Dialect::Postgres => format!("${position}"),
        }
    }

    /// `field = … AND (term = … OR term >= … AND term < …)`.
    fn term_filter(&mut self, field: &str, matches: &[TermMatch]) -> Result<String, String> {
        if matches.is_empty() {
            return Err(format!("a test of {field} needs a value"));
        }
        let field = self.bind(identifier(field)?.to_owned());
        let mut exact = Vec::new();
        let mut ranges = Vec::new();
        for term in matches {
            match term {
                TermMatch::Exact(value) => exact.push(self.bind(value.clone())),
                TermMatch::Prefix(prefix) => {
                    let low = self.bind(prefix.clone());
                    let high = self.bind(format!("{prefix}{PREFIX_END}"));
                    ranges.push(format!("(term >= {low} AND term < {high})"));
                }
            }
        }
        if !exact.is_empty() {
            ranges.push(format!("term IN ({})", exact.join(", ")));
        }
        Ok(format!("field = {field} AND ({})", ranges.join(" OR ")))
    }

    fn test(&mut self, test: &TermTest) -> Result<String, String> {
        let (workspace, kind) = (self.placeholder(1), self.placeholder(2));
        let own = |filter: String| {
            format!(
                "id IN (SELECT id FROM record_terms WHERE workspace_id = {workspace} AND kind = {kind} AND {filter})"
            )
        };
        match &test.via {
            None => {
                let filter = self.term_filter(test.field, &test.matches)?;
                Ok(own(filter))
            }
            Some(via) => {
                let link = self.bind(identifier(via.link)?.to_owned());
                let other = self.bind(identifier(via.kind)?.to_owned());
                let filter = self.term_filter(test.field, &test.matches)?;
                Ok(own(format!(
                    "field = {link} AND term IN (SELECT id FROM record_terms WHERE workspace_id = {workspace} AND kind = {other} AND {filter})"
                )))
            }
        }
    }

    fn condition(&mut self, condition: &Condition) -> Result<String, String> {
        Ok(match condition {
            Condition::Test(test) => self.test(test)?,
            Condition::All(parts) if parts.is_empty() => "TRUE".to_owned(),
            Condition::Any(parts) if parts.is_empty() => "FALSE".to_owned(),
            Condition::All(parts) | Condition::Any(parts) => {
                let joiner = if matches!(condition, Condition::All(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = parts
                    .iter()
                    .map(|part| self.condition(part))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(joiner))
            }
            Condition::Not(inner) => format!("NOT ({})", self.condition(inner)?),
        })
    }
}

pub(super) fn render(
    query: &TermQuery,
    dialect: Dialect,
    columns: &str,
) -> Result<RenderedSearch, String> {
    let mut renderer = Renderer {
        dialect,
        binds: Vec::new(),
    };
    let (workspace, kind) = (renderer.placeholder(1), renderer.placeholder(2));
    let mut filter = format!("workspace_id = {workspace} AND kind = {kind}");
    if let Some(condition) = &query.condition {
        filter.push_str(&format!(" AND {}", renderer.condition(condition)?));
    }
    let count = format!("SELECT count(*) FROM records WHERE {filter}");
    let count_binds = renderer.binds.len();
    let mut page_filter = filter;
    if let Some(after) = &query.after {
        let after = renderer.bind(after.clone());
        page_filter.push_str(&format!(" AND id > {after}"));
    }
    let limit = query.limit.min(i64::MAX as u64);
    let offset = query.offset.min(i64::MAX as u64);
    let page = format!(
        "SELECT {columns} FROM records WHERE {page_filter} ORDER BY id LIMIT {limit} OFFSET {offset}"
    );
    Ok(RenderedSearch {
        page,
        count,
        binds: renderer.binds,
        count_binds,
    })
}

/// The SQL a search's page runs on a backend, with its parameters after
/// the workspace and the kind: for an operator's or a benchmark's
/// `EXPLAIN`, never to run with values spliced in.
pub fn page_sql(query: &TermQuery, postgres: bool) -> Result<(String, Vec<String>), String> {
    let dialect = if postgres {
        Dialect::Postgres
    } else {
        Dialect::Sqlite
    };
    let rendered = render(query, dialect, "id")?;
    Ok((rendered.page, rendered.binds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(field: &'static str, via: Option<Via>, matches: Vec<TermMatch>) -> Condition {
        Condition::Test(TermTest {
            via,
            field,
            matches,
        })
    }

    #[test]
    fn a_search_renders_to_term_subqueries_with_bound_values() {
        let query = TermQuery {
            condition: Some(Condition::All(vec![
                test("seniority", None, vec![TermMatch::Exact("vp".into())]),
                Condition::Not(Box::new(test(
                    "name_word",
                    Some(Via {
                        link: "company",
                        kind: "company",
                    }),
                    vec![TermMatch::Prefix("acm".into())],
                ))),
            ])),
            after: Some("b".into()),
            offset: 0,
            limit: 10,
        };
        let rendered = render(&query, Dialect::Sqlite, "id").expect("renders");
        assert_eq!(
            rendered.binds,
            vec![
                "seniority",
                "vp",
                "company",
                "company",
                "name_word",
                "acm",
                "acm\u{10FFFF}",
                "b"
            ]
        );
        assert_eq!(rendered.count_binds, 7);
        assert!(
            rendered
                .page
                .ends_with("AND id > ?10 ORDER BY id LIMIT 10 OFFSET 0"),
            "{}",
            rendered.page
        );
        assert!(rendered.page.contains("NOT (id IN (SELECT id FROM record_terms WHERE workspace_id = ?1 AND kind = ?2 AND field = ?5 AND term IN (SELECT id FROM record_terms WHERE workspace_id = ?1 AND kind = ?6 AND field = ?7 AND ((term >= ?8 AND term < ?9)))))"), "{}", rendered.page);
        let postgres = render(&query, Dialect::Postgres, "id").expect("renders");
        assert!(
            postgres.count.contains("field = $3 AND (term IN ($4))"),
            "{}",
            postgres.count
        );
        let nothing = TermQuery {
            condition: Some(Condition::Any(vec![])),
            ..TermQuery::default()
        };
        assert!(
            render(&nothing, Dialect::Sqlite, "id")
                .expect("renders")
                .count
                .ends_with("AND FALSE")
        );
    }

    #[test]
    fn field_names_must_be_plain() {
        let query = TermQuery {
            condition: Some(test(
                "x'; DROP TABLE records; --",
                None,
                vec![TermMatch::Exact("v".into())],
            )),
            ..TermQuery::default()
        };
        assert!(render(&query, Dialect::Postgres, "id").is_err());
    }
}
