//! Several write statements sent to the database in as few round trips as it allows.
//!
//! Every statement through sqlx's SQLite driver is a round trip to the connection's worker
//! thread: two thread wake-ups, which on this 2-core VM cost more than the statement itself.
//! On the single writer connection that time is serialized, so a transaction of thirteen
//! small statements (an erasure) held every other writer up for thirteen round trips. SQLite
//! runs a multi-statement query in one go, binding `?` placeholders across its statements
//! in order, so a [`Script`] joins its statements with `;` there. PostgreSQL's extended
//! protocol takes one statement per query, so there each statement runs on its own (a
//! network round trip that the server pipelines well); the SQL is the same text either way.
//!
//! A script runs inside a transaction the caller opened and commits, with [`run_script!`];
//! it returns the rows affected by all statements together.

use sqlx::{Database, QueryBuilder};

/// What the engine accepts in one query.
pub(crate) trait Engine: Database {
    /// Whether one query may hold several statements that take bound parameters.
    const MULTI_STATEMENT: bool;
}

impl Engine for sqlx::Sqlite {
    const MULTI_STATEMENT: bool = true;
}

impl Engine for sqlx::Postgres {
    const MULTI_STATEMENT: bool = false;
}

/// Statements to run in order (see the module comment).
pub(crate) struct Script<'a, DB: Engine> {
    done: Vec<QueryBuilder<'a, DB>>,
    current: Option<QueryBuilder<'a, DB>>,
}

impl<'a, DB: Engine> Script<'a, DB> {
    pub(crate) fn new() -> Self {
        Self {
            done: Vec::new(),
            current: None,
        }
    }

    /// Starts the next statement with `sql`; bind its values on the returned builder
    /// (`push_bind`, `push_values`) before starting another.
    pub(crate) fn statement(&mut self, sql: &str) -> &mut QueryBuilder<'a, DB> {
        let next = match self.current.take() {
            Some(mut q) if DB::MULTI_STATEMENT => {
                q.push("; ");
                q.push(sql);
                q
            }
            Some(q) => {
                self.done.push(q);
                QueryBuilder::new(sql)
            }
            None => QueryBuilder::new(sql),
        };
        self.current.insert(next)
    }

    /// The queries to execute, in order.
    pub(crate) fn into_queries(self) -> Vec<QueryBuilder<'a, DB>> {
        let mut all = self.done;
        all.extend(self.current);
        all
    }
}

/// Runs a [`Script`] in the open transaction `$tx`; evaluates to the rows affected.
macro_rules! run_script {
    ($tx:ident, $script:expr) => {{
        let mut affected: u64 = 0;
        for mut q in $script.into_queries() {
            affected += q.build().execute(&mut *$tx).await?.rows_affected();
        }
        affected
    }};
}
pub(crate) use run_script;
