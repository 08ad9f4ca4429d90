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

impl Condition {
    /// The same condition in its simplest form: nested conjunctions and
    /// disjunctions flattened, one-part ones unwrapped, and a disjunction
    /// of tests of one field merged into one test of all their values (so
    /// that it can drive a search from one index range).
    pub fn simplified(self) -> Condition {
        match self {
            Condition::Test(test) => Condition::Test(test),
            Condition::Not(inner) => Condition::Not(Box::new(inner.simplified())),
            Condition::All(parts) => {
                let mut flat = Vec::new();
                for part in parts.into_iter().map(Condition::simplified) {
                    match part {
                        Condition::All(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                if flat.len() == 1 {
                    flat.remove(0)
                } else {
                    Condition::All(flat)
                }
            }
            Condition::Any(parts) => {
                let mut flat: Vec<Condition> = Vec::new();
                for part in parts.into_iter().map(Condition::simplified) {
                    match part {
                        Condition::Any(inner) => flat.extend(inner),
                        other => flat.push(other),
                    }
                }
                let mut merged: Vec<Condition> = Vec::new();
                for part in flat {
                    if let Condition::Test(test) = &part
                        && let Some(Condition::Test(same)) = merged.iter_mut().find(|known| {
                            matches!(known, Condition::Test(known)
                                if known.field == test.field && known.via == test.via)
                        })
                    {
                        same.matches.extend(test.matches.iter().cloned());
                        continue;
                    }
                    merged.push(part);
                }
                if merged.len() == 1 {
                    merged.remove(0)
                } else {
                    Condition::Any(merged)
                }
            }
        }
    }
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

/// A page is read from a driving test's postings (instead of walking the
/// kind in id order, probing each record) when that test matches at most
/// this many records: reading and sorting them all costs less than the
/// walk to the page's end would.
pub(super) const PAGE_DRIVER_MAX: u64 = 10_000;
/// How far the size of a test's postings is counted when choosing a
/// driver for a count.
pub(super) const COUNT_ESTIMATE_CAP: u64 = 100_000;

/// The parts of a query's condition that must all hold: a driver can be
/// chosen among its tests.
fn conjuncts(condition: &Condition) -> Vec<&Condition> {
    match condition {
        Condition::All(parts) => parts.iter().collect(),
        other => vec![other],
    }
}

/// Tests whose postings together hold every record `condition` matches
/// (and perhaps more): a test holds its own; a disjunction the union of
/// its parts'; a conjunction any one part's. A negation has none.
fn covering(condition: &Condition) -> Option<Vec<&TermTest>> {
    match condition {
        Condition::Test(test) => Some(vec![test]),
        Condition::Any(parts) => parts.iter().try_fold(Vec::new(), |mut tests, part| {
            tests.extend(covering(part)?);
            Some(tests)
        }),
        Condition::All(parts) => parts
            .iter()
            .filter_map(covering)
            .min_by_key(|tests| tests.len()),
        Condition::Not(_) => None,
    }
}

/// The conjuncts that could drive a query, with their positions among the
/// conjuncts and the tests whose postings cover each.
pub(super) fn driver_candidates(query: &TermQuery) -> Vec<(usize, Vec<&TermTest>)> {
    query
        .condition
        .as_ref()
        .map(|condition| {
            conjuncts(condition)
                .into_iter()
                .enumerate()
                .filter_map(|(index, part)| covering(part).map(|tests| (index, tests)))
                .collect()
        })
        .unwrap_or_default()
}

struct Renderer {
    dialect: Dialect,
    binds: Vec<String>,
}

impl Renderer {
    fn bind(&mut self, value: String) -> String {
        self.binds.push(value);
        // The workspace and the kind are the first two.
        let position = self.binds.len() + 2;
        self.placeholder(position)
    }

    fn placeholder(&self, position: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => format!("?{position}"),
            Dialect::Postgres => format!("${position}"),
        }
    }

    /// `{alias}.field = … AND ({alias}.term IN (…) OR {alias}.term >= … AND …)`.
    fn term_filter(
        &mut self,
        alias: &str,
        field: &str,
        matches: &[TermMatch],
    ) -> Result<String, String> {
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
                    ranges.push(format!("({alias}.term >= {low} AND {alias}.term < {high})"));
                }
            }
        }
        if !exact.is_empty() {
            ranges.push(format!("{alias}.term IN ({})", exact.join(", ")));
        }
        Ok(format!(
            "{alias}.field = {field} AND ({})",
            ranges.join(" OR ")
        ))
    }

    /// Whether the record whose id is `outer` passes `test`: an index
    /// probe by record (`record_terms_by_record`), through the linked
    /// record for a test `via` another kind.
    fn probe(&mut self, test: &TermTest, outer: &str) -> Result<String, String> {
        let (workspace, kind) = (self.placeholder(1), self.placeholder(2));
        // PostgreSQL would turn a probe into a join planned from estimates,
        // which for term postings are far off (it multiplies the
        // selectivities of kind, field and term as if independent): over a
        // million persons it started a page from every company of a size
        // (250,000 persons) and took 17 s. `OFFSET 0` keeps each probe a
        // probe, run for the records the walk reaches, as the driver chose.
        let fence = match self.dialect {
            Dialect::Sqlite => "",
            Dialect::Postgres => " OFFSET 0",
        };
        match &test.via {
            None => {
                let filter = self.term_filter("t", test.field, &test.matches)?;
                Ok(format!(
                    "EXISTS (SELECT 1 FROM record_terms t WHERE t.workspace_id = {workspace} AND t.kind = {kind} AND t.id = {outer} AND {filter}{fence})"
                ))
            }
            Some(via) => {
                let link = self.bind(identifier(via.link)?.to_owned());
                let other = self.bind(identifier(via.kind)?.to_owned());
                let filter = self.term_filter("c", test.field, &test.matches)?;
                Ok(match self.dialect {
                    // CROSS JOIN keeps SQLite from starting at the linked
                    // kind's postings (every company of a size) for each
                    // record.
                    Dialect::Sqlite => format!(
                        "EXISTS (SELECT 1 FROM record_terms p CROSS JOIN record_terms c WHERE p.workspace_id = {workspace} AND p.kind = {kind} AND p.id = {outer} AND p.field = {link} AND c.workspace_id = {workspace} AND c.kind = {other} AND c.id = p.term AND {filter})"
                    ),
                    // The same order for PostgreSQL, which has no CROSS JOIN
                    // hint: the linked record's test runs for each link, a
                    // fenced subquery. A term is compared byte-wise (COLLATE
                    // "C") and an id by the database's collation, so the
                    // link is cast to the id's collation, or the id index
                    // cannot serve the comparison (3 s against 98 ms).
                    Dialect::Postgres => format!(
                        "EXISTS (SELECT 1 FROM record_terms p CROSS JOIN LATERAL (SELECT 1 FROM record_terms c WHERE c.workspace_id = {workspace} AND c.kind = {other} AND c.id = p.term COLLATE \"default\" AND {filter} OFFSET 0) AS linked WHERE p.workspace_id = {workspace} AND p.kind = {kind} AND p.id = {outer} AND p.field = {link} OFFSET 0)"
                    ),
                })
            }
        }
    }

    /// The records some of `tests` match, as rows `d` with their ids in
    /// `d.id`: `FROM … WHERE …`.
    fn source(&mut self, tests: &[&TermTest]) -> Result<String, String> {
        match tests {
            // An empty disjunction: nothing matches. The workspace and
            // kind are still named: a statement must use every parameter
            // it is given.
            [] => {
                let (workspace, kind) = (self.placeholder(1), self.placeholder(2));
                Ok(format!(
                    "FROM record_terms d WHERE d.workspace_id = {workspace} AND d.kind = {kind} AND 1 = 0"
                ))
            }
            [test] => self.test_source(test),
            several => {
                let selects = several
                    .iter()
                    .map(|test| {
                        self.test_source(test)
                            .map(|from| format!("SELECT d.id {from}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // UNION ALL, not UNION: a record in two parts' postings is
                // counted or listed once by the DISTINCT of whoever reads
                // this, and an estimate wants the work (the sum) anyway;
                // UNION would first gather and sort every part in full
                // (measured: 155 ms against 2 ms for a capped estimate of
                // two title words over a million persons).
                Ok(format!(
                    "FROM ({}) AS d WHERE 1 = 1",
                    selects.join(" UNION ALL ")
                ))
            }
        }
    }

    /// The records a test matches, as rows `d` with their ids in `d.id`:
    /// `FROM … WHERE …`.
    fn test_source(&mut self, test: &TermTest) -> Result<String, String> {
        let (workspace, kind) = (self.placeholder(1), self.placeholder(2));
        match &test.via {
            None => {
                let filter = self.term_filter("d", test.field, &test.matches)?;
                Ok(format!(
                    "FROM record_terms d WHERE d.workspace_id = {workspace} AND d.kind = {kind} AND {filter}"
                ))
            }
            Some(via) => {
                let link = self.bind(identifier(via.link)?.to_owned());
                let other = self.bind(identifier(via.kind)?.to_owned());
                let filter = self.term_filter("c", test.field, &test.matches)?;
                // The id compared as a term is (COLLATE "C"), so that the
                // term index serves it on PostgreSQL (see `probe`).
                let id_as_term = match self.dialect {
                    Dialect::Sqlite => "c.id",
                    Dialect::Postgres => "c.id COLLATE \"C\"",
                };
                Ok(format!(
                    "FROM record_terms c CROSS JOIN record_terms d WHERE c.workspace_id = {workspace} AND c.kind = {other} AND {filter} AND d.workspace_id = {workspace} AND d.kind = {kind} AND d.field = {link} AND d.term = {id_as_term}"
                ))
            }
        }
    }

    fn condition(&mut self, condition: &Condition, outer: &str) -> Result<String, String> {
        Ok(match condition {
            Condition::Test(test) => self.probe(test, outer)?,
            Condition::All(parts) if parts.is_empty() => "1 = 1".to_owned(),
            Condition::Any(parts) if parts.is_empty() => "1 = 0".to_owned(),
            Condition::All(parts) | Condition::Any(parts) => {
                let joiner = if matches!(condition, Condition::All(_)) {
                    " AND "
                } else {
                    " OR "
                };
                let parts = parts
                    .iter()
                    .map(|part| self.condition(part, outer))
                    .collect::<Result<Vec<_>, _>>()?;
                format!("({})", parts.join(joiner))
            }
            Condition::Not(inner) => format!("NOT ({})", self.condition(inner, outer)?),
        })
    }
}

/// `SELECT count(*)` of the first `cap` postings of `test`: what it would
/// cost to drive a query from it.
pub(super) fn estimate(
    tests: &[&TermTest],
    dialect: Dialect,
    cap: u64,
) -> Result<(String, Vec<String>), String> {
    let mut renderer = Renderer {
        dialect,
        binds: Vec::new(),
    };
    let source = renderer.source(tests)?;
    Ok((
        format!("SELECT count(*) FROM (SELECT 1 {source} LIMIT {cap}) AS capped"),
        renderer.binds,
    ))
}

/// Renders a search. With `driver` (a position among the condition's
/// conjuncts, which must be a test), the page and the count read that
/// test's postings and probe the other conjuncts for each; without, the
/// page walks the kind in id order and probes every conjunct for each
/// record until the page is full.
pub(super) fn render(
    query: &TermQuery,
    dialect: Dialect,
    columns: &str,
    driver: Option<usize>,
) -> Result<RenderedSearch, String> {
    let mut renderer = Renderer {
        dialect,
        binds: Vec::new(),
    };
    let (workspace, kind) = (renderer.placeholder(1), renderer.placeholder(2));
    let limit = query.limit.min(i64::MAX as u64);
    let offset = query.offset.min(i64::MAX as u64);
    let parts = query.condition.as_ref().map(conjuncts).unwrap_or_default();
    let driving = driver.and_then(|index| {
        let part = parts.get(index)?;
        covering(part).map(|tests| (index, *part, tests))
    });
    let (page, count) = match driving {
        Some((index, part, tests)) => {
            let mut filter = renderer.source(&tests)?;
            // The driver's postings match its conjunct exactly only when it
            // is one test; otherwise they cover it, and it is probed too.
            let exact = matches!(part, Condition::Test(_));
            for (position, part) in parts.iter().enumerate() {
                if position != index || !exact {
                    filter.push_str(&format!(" AND {}", renderer.condition(part, "d.id")?));
                }
            }
            // One exact term of the record's own lists each record once.
            let once = matches!(part, Condition::Test(TermTest { via: None, matches, .. })
                if matches!(matches.as_slice(), [TermMatch::Exact(_)]));
            let counted = if once { "*" } else { "DISTINCT d.id" };
            let count = format!("SELECT count({counted}) {filter}");
            if let Some(after) = &query.after {
                let after = renderer.bind(after.clone());
                filter.push_str(&format!(" AND d.id > {after}"));
            }
            let page = format!(
                "SELECT {columns} FROM records WHERE workspace_id = {workspace} AND kind = {kind} AND id IN (SELECT DISTINCT d.id {filter} ORDER BY d.id LIMIT {limit} OFFSET {offset}) ORDER BY id"
            );
            (page, count)
        }
        None => {
            let mut filter = format!("workspace_id = {workspace} AND kind = {kind}");
            if let Some(condition) = &query.condition {
                filter.push_str(&format!(
                    " AND {}",
                    renderer.condition(condition, "records.id")?
                ));
            }
            let count = format!("SELECT count(*) FROM records WHERE {filter}");
            if let Some(after) = &query.after {
                let after = renderer.bind(after.clone());
                filter.push_str(&format!(" AND id > {after}"));
            }
            let page = format!(
                "SELECT {columns} FROM records WHERE {filter} ORDER BY id LIMIT {limit} OFFSET {offset}"
            );
            (page, count)
        }
    };
    // The keyset's value, if any, was bound last: the count takes the rest.
    let count_binds = renderer.binds.len() - usize::from(query.after.is_some());
    Ok(RenderedSearch {
        page,
        count,
        binds: renderer.binds,
        count_binds,
    })
}

/// The statements that size each test that could drive `query`: its
/// position and a `count(*)` capped where the choice no longer changes.
pub(super) fn estimates(
    query: &TermQuery,
    dialect: Dialect,
    count: bool,
) -> Result<Vec<(usize, String, Vec<String>)>, String> {
    let cap = if count {
        COUNT_ESTIMATE_CAP
    } else {
        PAGE_DRIVER_MAX + 1
    };
    driver_candidates(query)
        .into_iter()
        .map(|(position, tests)| {
            estimate(&tests, dialect, cap).map(|(sql, binds)| (position, sql, binds))
        })
        .collect()
}

/// The page's statement and, if `count`, the count's, each driven as the
/// sizes (position, postings) measured by [`estimates`] say: the page from
/// the smallest test if it is small enough, else by walking the kind; the
/// count always from the smallest test there is.
pub(super) fn render_sized(
    query: &TermQuery,
    dialect: Dialect,
    columns: &str,
    count: bool,
    sizes: &[(usize, u64)],
) -> Result<(RenderedSearch, Option<RenderedSearch>), String> {
    let (ordered, sizes) = in_probe_order(query, sizes);
    let (query, sizes) = (&ordered, sizes.as_slice());
    let smallest = sizes.iter().min_by_key(|(_, size)| *size).copied();
    let page_driver = smallest
        .filter(|(_, size)| *size <= PAGE_DRIVER_MAX)
        .map(|(position, _)| position);
    let page = render(query, dialect, columns, page_driver)?;
    let counted = if count {
        Some(render(
            query,
            dialect,
            columns,
            smallest.map(|(position, _)| position),
        )?)
    } else {
        None
    };
    Ok((page, counted))
}

/// The postings, each in id order, whose intersection is exactly what
/// `query` matches, when counting that way costs less than probing: every
/// conjunct is one exact term of the record's own (a seniority, a
/// country), there are at least two, and the smallest has more postings
/// than a page driver may (so probing from it is tens of thousands of
/// index seeks, where stepping through sorted postings costs a tenth as
/// much per entry). Each statement lists ids after the workspace and kind
/// parameters; the caller intersects the sorted lists. Measured over a
/// million persons, a country's 50,000 and a seniority's 125,000: 65 ms
/// probing, about 20 ms stepping.
pub(super) fn intersection_streams(
    query: &TermQuery,
    dialect: Dialect,
    sizes: &[(usize, u64)],
) -> Option<Vec<(String, Vec<String>)>> {
    intersected_tests(query, sizes)?
        .into_iter()
        .map(|test| {
            let mut renderer = Renderer {
                dialect,
                binds: Vec::new(),
            };
            let source = renderer.test_source(test).ok()?;
            Some((
                format!("SELECT d.id {source} ORDER BY d.id"),
                renderer.binds,
            ))
        })
        .collect()
}

/// The same intersection as [`intersection_streams`] as one statement
/// that counts it, joining the postings on id: for PostgreSQL, which can
/// merge two index scans in id order itself when told to (its estimates
/// of term postings are too far off to choose it alone: measured over a
/// million persons, 81 ms merging against 578 ms probing).
pub(super) fn intersection_count(
    query: &TermQuery,
    dialect: Dialect,
    sizes: &[(usize, u64)],
) -> Option<(String, Vec<String>)> {
    let tests = intersected_tests(query, sizes)?;
    let mut renderer = Renderer {
        dialect,
        binds: Vec::new(),
    };
    let mut joined = String::new();
    for (index, test) in tests.iter().enumerate() {
        let source = renderer.test_source(test).ok()?;
        if index == 0 {
            joined.push_str(&format!("(SELECT d.id {source}) AS s0"));
        } else {
            joined.push_str(&format!(
                " JOIN (SELECT d.id {source}) AS s{index} ON s{index}.id = s0.id"
            ));
        }
    }
    Some((format!("SELECT count(*) FROM {joined}"), renderer.binds))
}

/// The tests of `query` whose postings' intersection is what it matches,
/// when counting that way is the cheaper (see [`intersection_streams`]).
fn intersected_tests<'a>(
    query: &'a TermQuery,
    sizes: &[(usize, u64)],
) -> Option<Vec<&'a TermTest>> {
    let Some(Condition::All(parts)) = &query.condition else {
        return None;
    };
    let smallest = sizes.iter().map(|(_, size)| *size).min()?;
    let total: u64 = sizes.iter().map(|(_, size)| *size).sum();
    let own_single_terms = parts.len() >= 2
        && sizes.len() == parts.len()
        && parts.iter().all(|part| {
            matches!(part, Condition::Test(TermTest { via: None, matches, .. })
                if matches!(matches.as_slice(), [TermMatch::Exact(_)]))
        });
    // A probe costs about ten steps; each record of the smallest is probed
    // for every other conjunct.
    let probing = smallest.saturating_mul(10 * (parts.len() as u64 - 1));
    if !own_single_terms || smallest <= PAGE_DRIVER_MAX || total >= probing {
        return None;
    }
    parts
        .iter()
        .map(|part| match part {
            Condition::Test(test) => Some(test),
            _ => None,
        })
        .collect()
}

/// Whether any test of `condition` looks through a linked record.
fn looks_through_a_link(condition: &Condition) -> bool {
    match condition {
        Condition::Test(test) => test.via.is_some(),
        Condition::All(parts) | Condition::Any(parts) => parts.iter().any(looks_through_a_link),
        Condition::Not(inner) => looks_through_a_link(inner),
    }
}

/// `query` with its conjuncts in the order a record is best probed for
/// them, and `sizes` renumbered to match: a record's own terms before a
/// linked record's (one index probe, not two), then the fewest postings
/// first (the likeliest to fail, so the rest are not probed), conjuncts
/// of unknown size last. SQLite probes a walk's conjuncts in the order
/// written: over a million persons, a list's candidate page took 57 ms
/// probing the company's size first and 15 ms probing the title first.
fn in_probe_order(query: &TermQuery, sizes: &[(usize, u64)]) -> (TermQuery, Vec<(usize, u64)>) {
    let Some(Condition::All(parts)) = &query.condition else {
        return (query.clone(), sizes.to_vec());
    };
    let size_of = |position: usize| {
        sizes
            .iter()
            .find(|(known, _)| *known == position)
            .map(|(_, size)| *size)
    };
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&position| {
        (
            looks_through_a_link(&parts[position]),
            size_of(position).unwrap_or(u64::MAX),
        )
    });
    let renumbered = sizes
        .iter()
        .filter_map(|(position, size)| {
            let now = order.iter().position(|old| old == position)?;
            Some((now, *size))
        })
        .collect();
    let ordered = TermQuery {
        condition: Some(Condition::All(
            order
                .iter()
                .map(|&position| parts[position].clone())
                .collect(),
        )),
        ..query.clone()
    };
    (ordered, renumbered)
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
    let rendered = render(query, dialect, "id", None)?;
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

    fn sample() -> TermQuery {
        TermQuery {
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
        }
    }

    #[test]
    fn a_walk_probes_each_record_by_index() {
        let rendered = render(&sample(), Dialect::Sqlite, "id", None).expect("renders");
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
        assert!(rendered.page.contains("EXISTS (SELECT 1 FROM record_terms t WHERE t.workspace_id = ?1 AND t.kind = ?2 AND t.id = records.id AND t.field = ?3 AND (t.term IN (?4)))"), "{}", rendered.page);
        assert!(rendered.page.contains("NOT (EXISTS (SELECT 1 FROM record_terms p CROSS JOIN record_terms c WHERE p.workspace_id = ?1 AND p.kind = ?2 AND p.id = records.id AND p.field = ?5 AND c.workspace_id = ?1 AND c.kind = ?6 AND c.id = p.term AND c.field = ?7 AND ((c.term >= ?8 AND c.term < ?9))))"), "{}", rendered.page);
        let postgres = render(&sample(), Dialect::Postgres, "id", None).expect("renders");
        assert!(
            postgres.count.contains("t.field = $3 AND (t.term IN ($4))"),
            "{}",
            postgres.count
        );
        let nothing = TermQuery {
            condition: Some(Condition::Any(vec![])),
            ..TermQuery::default()
        };
        assert!(
            render(&nothing, Dialect::Sqlite, "id", None)
                .expect("renders")
                .count
                .ends_with("AND 1 = 0")
        );
    }

    #[test]
    fn only_large_conjunctions_of_single_own_terms_are_counted_by_intersection() {
        let exact = |field: &'static str, value: &str| {
            test(field, None, vec![TermMatch::Exact(value.into())])
        };
        let of = |parts: Vec<Condition>| TermQuery {
            condition: Some(Condition::All(parts)),
            ..TermQuery::default()
        };
        let pair = of(vec![
            exact("location", "united states"),
            exact("seniority", "vp"),
        ]);
        let streams = intersection_streams(&pair, Dialect::Sqlite, &[(0, 50_000), (1, 100_000)])
            .expect("large: intersected");
        assert_eq!(
            streams,
            [
                (
                    "SELECT d.id FROM record_terms d WHERE d.workspace_id = ?1 AND d.kind = ?2 AND d.field = ?3 AND (d.term IN (?4)) ORDER BY d.id".to_owned(),
                    vec!["location".to_owned(), "united states".to_owned()]
                ),
                (
                    "SELECT d.id FROM record_terms d WHERE d.workspace_id = ?1 AND d.kind = ?2 AND d.field = ?3 AND (d.term IN (?4)) ORDER BY d.id".to_owned(),
                    vec!["seniority".to_owned(), "vp".to_owned()]
                ),
            ]
        );
        let (count, binds) =
            intersection_count(&pair, Dialect::Postgres, &[(0, 50_000), (1, 100_000)])
                .expect("large: intersected");
        assert_eq!(
            count,
            "SELECT count(*) FROM (SELECT d.id FROM record_terms d WHERE d.workspace_id = $1 AND d.kind = $2 AND d.field = $3 AND (d.term IN ($4))) AS s0 JOIN (SELECT d.id FROM record_terms d WHERE d.workspace_id = $1 AND d.kind = $2 AND d.field = $5 AND (d.term IN ($6))) AS s1 ON s1.id = s0.id"
        );
        assert_eq!(binds, ["location", "united states", "seniority", "vp"]);
        // A small conjunct: probing from it is cheap.
        assert!(intersection_streams(&pair, Dialect::Sqlite, &[(0, 900), (1, 100_000)]).is_none());
        // One list far longer than probing the other: probe.
        let skewed = of(vec![exact("location", "x"), exact("keyword", "y")]);
        assert!(
            intersection_streams(&skewed, Dialect::Sqlite, &[(0, 20_000), (1, 250_000)]).is_none()
        );
        // Two values of a field, a linked record's term, a negation: not
        // lists in id order, or not an intersection.
        for other in [
            test(
                "seniority",
                None,
                vec![
                    TermMatch::Exact("vp".into()),
                    TermMatch::Exact("cto".into()),
                ],
            ),
            test(
                "headcount",
                Some(Via {
                    link: "company",
                    kind: "company",
                }),
                vec![TermMatch::Exact("1-10".into())],
            ),
            test("name", None, vec![TermMatch::Prefix("ann".into())]),
        ] {
            let query = of(vec![exact("location", "united states"), other]);
            assert!(
                intersection_streams(&query, Dialect::Sqlite, &[(0, 50_000), (1, 50_000)])
                    .is_none()
            );
        }
        let negated = of(vec![
            exact("location", "united states"),
            Condition::Not(Box::new(exact("seniority", "vp"))),
        ]);
        assert!(intersection_streams(&negated, Dialect::Sqlite, &[(0, 50_000)]).is_none());
    }

    #[test]
    fn conjuncts_are_probed_own_terms_first_then_fewest_postings_first() {
        let company = || {
            Some(Via {
                link: "company",
                kind: "company",
            })
        };
        let exact = |value: &str| vec![TermMatch::Exact(value.into())];
        let query = TermQuery {
            condition: Some(Condition::All(vec![
                test("headcount", company(), exact("501-1000")),
                Condition::Not(Box::new(test("skill", None, exact("go")))),
                test("location", None, exact("united states")),
                test("seniority", None, exact("vp")),
            ])),
            ..TermQuery::default()
        };
        let (ordered, sizes) = in_probe_order(&query, &[(0, 5), (2, 900), (3, 40)]);
        let Some(Condition::All(parts)) = ordered.condition else {
            panic!("still a conjunction");
        };
        let fields: Vec<&str> = parts
            .iter()
            .map(|part| match part {
                Condition::Test(test) => test.field,
                Condition::Not(_) => "not",
                _ => "other",
            })
            .collect();
        assert_eq!(fields, ["seniority", "location", "not", "headcount"]);
        assert_eq!(sizes, [(3, 5), (1, 900), (0, 40)]);
    }

    #[test]
    fn a_driven_search_reads_one_tests_postings_and_probes_the_rest() {
        let query = sample();
        assert_eq!(driver_candidates(&query).len(), 1);
        let rendered = render(&query, Dialect::Sqlite, "id", Some(0)).expect("renders");
        assert_eq!(
            rendered.count,
            "SELECT count(*) FROM record_terms d WHERE d.workspace_id = ?1 AND d.kind = ?2 AND d.field = ?3 AND (d.term IN (?4)) AND NOT (EXISTS (SELECT 1 FROM record_terms p CROSS JOIN record_terms c WHERE p.workspace_id = ?1 AND p.kind = ?2 AND p.id = d.id AND p.field = ?5 AND c.workspace_id = ?1 AND c.kind = ?6 AND c.id = p.term AND c.field = ?7 AND ((c.term >= ?8 AND c.term < ?9))))"
        );
        assert!(
            rendered
                .page
                .contains("AND d.id > ?10 ORDER BY d.id LIMIT 10 OFFSET 0) ORDER BY id"),
            "{}",
            rendered.page
        );
        let (estimate, binds) =
            estimate(&driver_candidates(&query)[0].1, Dialect::Postgres, 100).expect("renders");
        assert_eq!(
            estimate,
            "SELECT count(*) FROM (SELECT 1 FROM record_terms d WHERE d.workspace_id = $1 AND d.kind = $2 AND d.field = $3 AND (d.term IN ($4)) LIMIT 100) AS capped"
        );
        assert_eq!(binds, vec!["seniority", "vp"]);
    }

    #[test]
    fn a_disjunction_drives_from_the_union_of_its_parts_and_is_probed_too() {
        let exact = |value: &str| vec![TermMatch::Exact(value.into())];
        let query = TermQuery {
            condition: Some(Condition::All(vec![
                Condition::Any(vec![
                    test("title_word", None, exact("cto")),
                    Condition::All(vec![
                        test("title_word", None, exact("vp")),
                        Condition::Not(Box::new(test("seniority", None, exact("intern")))),
                    ]),
                ]),
                Condition::Not(Box::new(test("location", None, exact("germany")))),
            ])),
            limit: 5,
            ..TermQuery::default()
        };
        let candidates = driver_candidates(&query);
        assert_eq!(candidates.len(), 1, "the negation cannot drive");
        assert_eq!(candidates[0].1.len(), 2, "cto ∪ vp");
        let rendered = render(&query, Dialect::Sqlite, "id", Some(0)).expect("renders");
        assert!(
            rendered.count.starts_with("SELECT count(DISTINCT d.id) FROM (SELECT d.id FROM record_terms d WHERE d.workspace_id = ?1 AND d.kind = ?2 AND d.field = ?3 AND (d.term IN (?4)) UNION ALL SELECT d.id FROM record_terms d WHERE d.workspace_id = ?1 AND d.kind = ?2 AND d.field = ?5 AND (d.term IN (?6))) AS d WHERE 1 = 1 AND (EXISTS"),
            "{}",
            rendered.count
        );
        assert!(rendered.count.contains("NOT (EXISTS (SELECT 1 FROM record_terms t WHERE t.workspace_id = ?1 AND t.kind = ?2 AND t.id = d.id AND t.field = ?11"), "{}", rendered.count);
    }

    #[test]
    fn an_empty_disjunction_drives_a_search_that_finds_nothing() {
        let query = TermQuery {
            condition: Some(Condition::All(vec![
                Condition::Any(vec![]),
                test("seniority", None, vec![TermMatch::Exact("vp".into())]),
            ])),
            limit: 5,
            ..TermQuery::default()
        };
        let candidates = driver_candidates(&query);
        assert_eq!(candidates[0].1.len(), 0);
        let (sized, binds) = estimate(&candidates[0].1, Dialect::Sqlite, 10).expect("renders");
        assert!(sized.contains("?1") && sized.contains("?2"), "{sized}");
        assert!(binds.is_empty());
        let rendered = render(&query, Dialect::Postgres, "id", Some(0)).expect("renders");
        assert!(
            rendered.count.starts_with(
                "SELECT count(DISTINCT d.id) FROM record_terms d WHERE d.workspace_id = $1 AND d.kind = $2 AND 1 = 0 AND 1 = 0 AND EXISTS"
            ),
            "{}",
            rendered.count
        );
    }

    #[test]
    fn conditions_simplify_to_tests_that_can_drive() {
        let exact = |value: &str| vec![TermMatch::Exact(value.into())];
        let nested = Condition::All(vec![Condition::All(vec![Condition::Any(vec![
            Condition::Any(vec![test("seniority", None, exact("vp"))]),
            test("seniority", None, exact("director")),
        ])])]);
        assert_eq!(
            nested.simplified(),
            test(
                "seniority",
                None,
                vec![
                    TermMatch::Exact("vp".into()),
                    TermMatch::Exact("director".into())
                ]
            )
        );
        let mixed = Condition::Any(vec![
            test("title_word", None, exact("cto")),
            Condition::All(vec![
                test("title_word", None, exact("vp")),
                test("title_word", None, exact("engineering")),
            ]),
        ]);
        assert_eq!(mixed.clone().simplified(), mixed);
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
        assert!(render(&query, Dialect::Postgres, "id", None).is_err());
    }
}
