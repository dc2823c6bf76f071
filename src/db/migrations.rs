//! The schema: embedded migrations applied or reverted, the recount a
//! migration asks for, the server role's grant and what it may do, the
//! durability of commits, and the live columns.

use super::*;

/// Applies every pending migration of the connection's backend.
pub fn migrate(conn: &mut DbConn) -> Result<usize, DbError> {
    if let DbConn::Postgresql(c) = conn
        && !may_create(c)?
    {
        // The server's role, which owns nothing: it cannot migrate, only
        // find that nothing is left to do.
        return match pending_postgres(c)? {
            0 => Ok(0),
            n => Err(DbError::Migration(
                format!(
                    "{n} migrations are pending and this role may not apply them: run \
                     `vrs migrate` (or the server) with --migration-database-url, the tables' owner"
                )
                .into(),
            )),
        };
    }
    let applied = match conn {
        DbConn::Postgresql(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    applied.map_err(DbError::Migration)
}

/// Runs the recount a migration asked for (a row in `counts_owed`: a
/// migration that adds a kept count starts it from nothing, and its own
/// query of a tenant table would see no rows under PostgreSQL's row-level
/// security), then clears the request. One cut short leaves the request
/// standing and runs again at the next start. Returns whether it ran.
pub fn settle_counts(conn: &mut DbConn) -> Result<bool, DbError> {
    use schema::counts_owed;
    let owed: i64 = counts_owed::table.count().get_result(conn)?;
    if owed == 0 {
        return Ok(false);
    }
    stat_counts::recount(conn)?;
    diesel::delete(counts_owed::table).execute(conn)?;
    Ok(true)
}

/// Whether the role may create tables in the current schema.
fn may_create(c: &mut diesel::PgConnection) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        may: bool,
    }
    let f: Flag = diesel::sql_query(
        "SELECT coalesce(has_schema_privilege(current_schema(), 'CREATE'), false) AS may",
    )
    .get_result(c)?;
    Ok(f.may)
}

/// How many of our migrations the database has not applied, read without
/// creating anything.
fn pending_postgres(c: &mut diesel::PgConnection) -> Result<usize, DbError> {
    use diesel::migration::MigrationSource;
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version::text AS version FROM __diesel_schema_migrations")
            .load::<Applied>(c)?
            .into_iter()
            .map(|a| a.version)
            .collect();
    let ours = MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
        .map_err(DbError::Migration)?;
    Ok(ours
        .iter()
        .filter(|m| !applied.contains(&m.name().version().to_string()))
        .count())
}

/// Reverts every applied migration (used by `vrs migrate --revert-all` and the
/// down/up test).
pub fn revert_all(conn: &mut DbConn) -> Result<usize, DbError> {
    let reverted = match conn {
        DbConn::Postgresql(c) => c
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
    };
    reverted.map_err(DbError::Migration)
}

/// Whether a commit this connection makes is on disk when it returns, and
/// the settings that say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    pub durable: bool,
    /// The settings as the database reports them (`synchronous=FULL, WAL`).
    pub settings: String,
}

/// The durability of this connection's commits: on SQLite its
/// `synchronous` level in WAL mode; on PostgreSQL the server's `fsync` and
/// `full_page_writes` and the session's `synchronous_commit`.
pub fn durability(conn: &mut DbConn) -> Result<Durability, DbError> {
    #[derive(QueryableByName)]
    struct Settings {
        #[diesel(sql_type = diesel::sql_types::Text)]
        a: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        b: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        c: String,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let s: Settings = diesel::sql_query(
                "SELECT current_setting('fsync') AS a, current_setting('synchronous_commit') AS b, \
                 current_setting('full_page_writes') AS c",
            )
            .get_result(c)?;
            Ok(Durability {
                durable: s.a == "on" && s.b != "off" && s.c == "on",
                settings: format!(
                    "fsync={}, synchronous_commit={}, full_page_writes={}",
                    s.a, s.b, s.c
                ),
            })
        }
        DbConn::Sqlite(c) => {
            let s: Settings = diesel::sql_query(
                "SELECT CAST((SELECT synchronous FROM pragma_synchronous) AS TEXT) AS a, \
                 (SELECT journal_mode FROM pragma_journal_mode) AS b, '' AS c",
            )
            .get_result(c)?;
            let level = match s.a.as_str() {
                "0" => "OFF",
                "1" => "NORMAL",
                "2" => "FULL",
                "3" => "EXTRA",
                other => other,
            };
            Ok(Durability {
                durable: matches!(level, "FULL" | "EXTRA"),
                settings: format!("synchronous={level}, journal_mode={}", s.b.to_uppercase()),
            })
        }
    }
}

/// Whether the PostgreSQL role we run as would skip row-level security
/// (superuser or BYPASSRLS). SQLite has no such notion.
pub fn role_bypasses_rls(conn: &mut DbConn) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        bypass: bool,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let f: Flag = diesel::sql_query(
                "SELECT (rolsuper OR rolbypassrls) AS bypass FROM pg_roles WHERE rolname = current_user",
            )
            .get_result(c)?;
            Ok(f.bypass)
        }
        DbConn::Sqlite(_) => Ok(false),
    }
}

/// Whether the PostgreSQL role we run as owns (or may act as the owner of)
/// a table of our schema: it could then lift row-level security, change a
/// policy or drop the log's triggers. SQLite has no such notion.
pub fn role_owns_tables(conn: &mut DbConn) -> Result<bool, DbError> {
    #[derive(QueryableByName)]
    struct Flag {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        owns: bool,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let f: Flag = diesel::sql_query(
                "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') \
                 AND pg_has_role(current_user, c.relowner, 'USAGE')) AS owns",
            )
            .get_result(c)?;
            Ok(f.owns)
        }
        DbConn::Sqlite(_) => Ok(false),
    }
}

/// The PostgreSQL role a connection runs as.
pub fn current_role(conn: &mut DbConn) -> Result<Option<String>, DbError> {
    #[derive(QueryableByName)]
    struct Role {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    match conn {
        DbConn::Postgresql(c) => {
            let r: Role = diesel::sql_query("SELECT current_user::text AS name").get_result(c)?;
            Ok(Some(r.name))
        }
        DbConn::Sqlite(_) => Ok(None),
    }
}

/// Gives the server's role what it needs of the schema and no more, as the
/// tables' owner (`owner`), after the migrations: rows to read and write,
/// but the operation log and the provision records to read and add to only
/// (the retention purge goes through the owner's function), the migration
/// journal to read only, no ownership, no DDL. Run at every start, so a
/// table a new migration adds is granted too.
pub fn grant_server_role(owner: &mut DbConn, role: &str) -> Result<(), DbError> {
    #[derive(QueryableByName)]
    struct Names {
        #[diesel(sql_type = diesel::sql_types::Text)]
        role: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        schema: String,
    }
    let DbConn::Postgresql(c) = owner else {
        return Ok(());
    };
    let n: Names = diesel::sql_query(
        "SELECT quote_ident($1) AS role, quote_ident(current_schema()) AS schema",
    )
    .bind::<diesel::sql_types::Text, _>(role)
    .get_result(c)?;
    let (r, s) = (n.role, n.schema);
    c.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA {s} TO {r};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {r};
         REVOKE UPDATE, DELETE, TRUNCATE ON audit_log, provision_records FROM {r};
         REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON __diesel_schema_migrations FROM {r};
         GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {r};
         GRANT EXECUTE ON FUNCTION purge_provision_records(text, timestamp),
             refresh_resident_statistics() TO {r};"
    ))?;
    Ok(())
}

/// Table and column names as the live database has them (for the schema
/// equivalence test and `vrs migrate --check`).
pub fn live_columns(conn: &mut DbConn) -> Result<Vec<(String, String)>, DbError> {
    #[derive(QueryableByName)]
    struct Col {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        column_name: String,
    }
    let cols: Vec<Col> = match conn {
        DbConn::Postgresql(c) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name NOT LIKE '\\_\\_diesel%' \
             ORDER BY 1, 2",
        )
        .load(c)?,
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name \
             FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE '\\_\\_diesel%' ESCAPE '\\' \
             AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1, 2",
        )
        .load(c)?,
    };
    Ok(cols
        .into_iter()
        .map(|c| (c.table_name, c.column_name))
        .collect())
}
