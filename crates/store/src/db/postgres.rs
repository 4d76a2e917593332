//! PostgreSQL: async on a pool of connections (deadpool), with a deadline on every call.
//!
//! A database that accepts connections and then stops answering would otherwise hang
//! every caller, so nothing waits without bound:
//!
//! - TCP connect within [`CONNECT_TIMEOUT`], and a new connection (connect, TLS-less
//!   handshake, authentication) within the same;
//! - every call (waiting for a pooled connection included) within [`CALL_DEADLINE`];
//!   past it the call fails with [`StoreError::Unavailable`] and its connection is
//!   closed rather than handed to the next caller;
//! - the server ends statements running over [`STATEMENT_TIMEOUT`] itself, and TCP
//!   keepalive finds connections whose peer vanished.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{NoTls, error::SqlState};

use super::{Arg, Cell, Done, Row, Statement};
use crate::StoreError;

/// Connections kept open at most.
const POOL_SIZE: usize = 16;
/// A new connection: TCP, handshake and authentication.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Any one call, from waiting for a connection to its last row.
pub(crate) const CALL_DEADLINE: Duration = Duration::from_secs(5);
/// Statements the server lets run.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(10);

impl ToSql for Arg {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Self::Null => Ok(IsNull::Yes),
            // The column decides the width: the statement's parameter type is the column's.
            Self::Int(v) if *ty == Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
            Self::Int(v) if *ty == Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
            Self::Int(v) => v.to_sql(ty, out),
            Self::Text(v) => v.to_sql(ty, out),
            Self::Bytes(v) => v.to_sql(ty, out),
            Self::Bool(v) => v.to_sql(ty, out),
            Self::Texts(v) => v.to_sql(ty, out),
            Self::Ints(v) => v.to_sql(ty, out),
            Self::Bools(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn cells(row: &tokio_postgres::Row) -> Result<Row, tokio_postgres::Error> {
    let mut out = Vec::with_capacity(row.len());
    for (i, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let cell = if *ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
        } else if *ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?
                .map(|v| Cell::Int(i64::from(v)))
        } else if *ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?
                .map(|v| Cell::Int(i64::from(v)))
        } else if *ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.map(Cell::Bool)
        } else if *ty == Type::BYTEA {
            row.try_get::<_, Option<Vec<u8>>>(i)?.map(Cell::Bytes)
        } else {
            row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        };
        out.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row(out))
}

/// `PostgreSQL user@host:port/db`, for messages (never the password).
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "PostgreSQL {}@{}:{}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("?")
    )
}

/// The pool and where it leads.
pub(crate) struct Postgres {
    pool: Pool,
    config: tokio_postgres::Config,
    location: String,
}

impl Postgres {
    /// A pool for `url`; no connection is made until the first call.
    pub(crate) fn new(url: &str) -> Result<Self, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            path: "G2W_DATABASE_URL".into(),
            source: Box::new(e),
        })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3)
            .options(format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        let location = describe(&config);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CALL_DEADLINE))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Open {
                path: location.clone().into(),
                source: Box::new(e),
            })?;
        Ok(Self {
            pool,
            config,
            location,
        })
    }

    pub(crate) fn location(&self) -> &str {
        &self.location
    }

    /// What a failure means for callers: the database gone or slow (try later), a
    /// conflict with what is stored, or a refusal.
    pub(crate) fn failed(&self, what: &str, e: tokio_postgres::Error) -> StoreError {
        let unavailable = |e: tokio_postgres::Error| StoreError::Unavailable {
            database: self.location.clone(),
            source: Box::new(e),
        };
        match e.code() {
            None => unavailable(e),
            Some(code) if code.code().starts_with("23") => StoreError::Conflict(
                e.as_db_error()
                    .map_or_else(|| e.to_string(), |db| db.message().to_owned()),
            ),
            Some(code)
                if *code == SqlState::QUERY_CANCELED
                    || *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CRASH_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW
                    || *code == SqlState::TOO_MANY_CONNECTIONS
                    || code.code().starts_with("08")
                    || code.code().starts_with("53") =>
            {
                unavailable(e)
            }
            Some(_) => StoreError::Database {
                database: self.location.clone(),
                what: what.to_owned(),
                source: Box::new(e),
            },
        }
    }

    fn late(&self, deadline: Duration) -> StoreError {
        StoreError::Unavailable {
            database: self.location.clone(),
            source: format!("no answer within {} s", deadline.as_secs()).into(),
        }
    }

    /// A pooled connection, within the call's deadline.
    pub(crate) async fn connection(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            deadpool_postgres::PoolError::Backend(e) => self.failed("a connection", e),
            deadpool_postgres::PoolError::Timeout(_) => self.late(CALL_DEADLINE),
            other => StoreError::Unavailable {
                database: self.location.clone(),
                source: Box::new(other),
            },
        })
    }

    pub(crate) async fn run(&self, steps: Vec<Statement>) -> Result<Vec<Done>, StoreError> {
        let what = super::describe(&steps);
        let work = async {
            let mut client = self.connection().await?;
            let outcome = tokio::time::timeout(CALL_DEADLINE, async {
                if steps.len() == 1 {
                    run_steps(&client, &steps).await
                } else {
                    let tx = client.transaction().await?;
                    let done = run_steps(&tx, &steps).await?;
                    tx.commit().await?;
                    Ok(done)
                }
            })
            .await;
            match outcome {
                Ok(done) => done.map_err(|e| self.failed(&what, e)),
                Err(_) => {
                    // Mid-statement on a database that stopped answering: close it
                    // rather than give it to the next caller.
                    drop(Object::take(client));
                    Err(self.late(CALL_DEADLINE))
                }
            }
        };
        tokio::time::timeout(CALL_DEADLINE + CONNECT_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| Err(self.late(CALL_DEADLINE)))
    }

    /// Calls `on_message` with every notification's payload on `channel` until `stop`
    /// fires, on a connection of its own outside the pool; after a break it connects
    /// again a second later (callers poll meanwhile, so nothing is lost).
    pub(crate) fn listen(
        &self,
        channel: &'static str,
        on_message: Box<dyn Fn(&str) + Send + Sync>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let config = self.config.clone();
        let location = self.location.clone();
        tokio::spawn(async move {
            while !*stop.borrow() {
                tokio::select! {
                    ended = listen_once(&config, channel, &*on_message) => {
                        if let Err(e) = ended {
                            tracing::warn!("LISTEN {channel} on {location} stopped ({e}); polling meanwhile");
                        }
                    }
                    _ = stop.changed() => return,
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = stop.changed() => return,
                }
            }
        });
    }
}

/// One `LISTEN` session: connects, listens, and hands every payload to `on_message`
/// until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    on_message: &(dyn Fn(&str) + Send + Sync),
) -> Result<(), String> {
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls))
        .await
        .map_err(|_| format!("no connection within {} s", CONNECT_TIMEOUT.as_secs()))?
        .map_err(|e| e.to_string())?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    });
    let listening = client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .map_err(|e| e.to_string());
    if listening.is_ok() {
        while let Some(payload) = rx.recv().await {
            on_message(&payload);
        }
    }
    driver.abort();
    listening.and(Err("the connection ended".into()))
}

async fn run_steps<C: deadpool_postgres::GenericClient + Sync>(
    client: &C,
    steps: &[Statement],
) -> Result<Vec<Done>, tokio_postgres::Error> {
    let mut done = Vec::with_capacity(steps.len());
    for step in steps {
        let prepared = client.prepare_cached(&step.sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> =
            step.args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
        if prepared.columns().is_empty() {
            let changed = client.execute(&prepared, &params).await?;
            done.push(Done {
                rows: Vec::new(),
                changed,
            });
        } else {
            let rows = client
                .query(&prepared, &params)
                .await?
                .iter()
                .map(cells)
                .collect::<Result<Vec<_>, _>>()?;
            done.push(Done {
                changed: rows.len() as u64,
                rows,
            });
        }
    }
    Ok(done)
}
