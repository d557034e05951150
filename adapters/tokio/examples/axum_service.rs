//! A small REST service on axum with slotcache in front of its database.
//!
//! ```text
//! cargo run -p slotcache-cli -- dev up    # a local 3+3 cluster; prints its seeds; Ctrl-C stops it
//! cargo run -p slotcache-tokio --example axum_service -- redis://127.0.0.1:<seed port> 127.0.0.1:3000
//!
//! curl localhost:3000/users/1             # loaded from the "database" once, then cached
//! curl localhost:3000/teams/red           # the team's roster, cached with tags
//! curl -X PUT localhost:3000/users/1 -H 'content-type: application/json' \
//!      -d '{"name":"Alice","team":"blue"}' # updates the database, invalidates what it changed
//! curl localhost:3000/stats               # database queries, and the user namespace's hits and misses
//! ```
//!
//! The arguments are the cluster's URL (default `redis://127.0.0.1:7000`) and the address to
//! listen on (default `127.0.0.1:3000`).
//!
//! - `GET /users/{id}` reads through [`Cache::get`]: on a miss the loader (the "database", a
//!   map with 20 ms of latency) produces the user, which is stored and returned. Concurrent
//!   requests for one user share one load (no stampede on the database); an unknown user is
//!   [`CacheError::NotFound`] from the loader (not cached), answered 404.
//! - `GET /teams/{team}` serves a derived entry: the team's roster, stored with
//!   [`Cache::set_with_ttl`] and two kinds of tags, `team:{team}` and `user:{id}` for each
//!   member. (`get` stores what its loader returns untagged: an entry that must go by tag is
//!   written with `set`.)
//! - `PUT /users/{id}` writes the database first, then invalidates: the user's entry
//!   ([`Cache::invalidate`]) and, in one call, every roster listing the user or of the team the
//!   user joins ([`Cache::invalidate_by_tags`]), on every shard and for every client of the
//!   cluster. A roster read from the database before the write and stored after the
//!   invalidation would survive it: the rosters' short TTL bounds that window.
//!
//! [`Cache::get`]: slotcache_tokio::Cache::get
//! [`Cache::set_with_ttl`]: slotcache_tokio::Cache::set_with_ttl
//! [`Cache::invalidate`]: slotcache_tokio::Cache::invalidate
//! [`Cache::invalidate_by_tags`]: slotcache_tokio::Cache::invalidate_by_tags
//! [`CacheError::NotFound`]: slotcache_tokio::CacheError::NotFound

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slotcache_tokio::{Cache, CacheError, NamespaceOptions, Provider, ProviderConfig, Ttl};

/// A user, as the database stores it and the API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct User {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) team: String,
}

/// The body of `PUT /users/{id}`.
#[derive(Debug, Deserialize)]
pub(crate) struct UserUpdate {
    pub(crate) name: String,
    pub(crate) team: String,
}

/// Stands for the database: a map, 20 ms per query, and a count of queries.
#[derive(Debug, Default)]
pub(crate) struct Database {
    users: Mutex<BTreeMap<u64, User>>,
    queries: AtomicU64,
}

impl Database {
    const LATENCY: Duration = Duration::from_millis(20);

    /// A database holding these users.
    pub(crate) fn with(users: impl IntoIterator<Item = User>) -> Self {
        let users = users.into_iter().map(|u| (u.id, u)).collect();
        Self { users: Mutex::new(users), queries: AtomicU64::new(0) }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, User>> {
        self.users.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn user(&self, id: u64) -> Option<User> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Self::LATENCY).await;
        self.table().get(&id).cloned()
    }

    async fn team(&self, team: &str) -> Vec<User> {
        self.queries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Self::LATENCY).await;
        self.table().values().filter(|u| u.team == team).cloned().collect()
    }

    /// Writes the user.
    async fn update(&self, user: User) {
        self.queries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Self::LATENCY).await;
        self.table().insert(user.id, user);
    }
}

/// What every handler shares: the database and two namespaces of one provider.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) db: Arc<Database>,
    pub(crate) users: Cache<u64, User>,
    pub(crate) teams: Cache<String, Vec<User>>,
}

impl AppState {
    /// The namespaces of this service on `provider`, in front of `db`.
    pub(crate) fn new(provider: &Provider, db: Arc<Database>) -> Result<Self, CacheError> {
        let users = provider.create_namespace("example-users", NamespaceOptions::default())?;
        let teams = provider.create_namespace("example-teams", NamespaceOptions::default())?;
        Ok(Self { db, users, teams })
    }
}

/// The service's routes.
pub(crate) fn app(state: AppState) -> Router {
    Router::new()
        .route("/users/{id}", get(get_user).put(put_user))
        .route("/teams/{team}", get(get_team))
        .route("/stats", get(stats))
        .with_state(state)
}

/// A cache error as an HTTP answer: a loader's `NotFound` is a 404, anything else a 503 (the
/// cluster is unreachable or timed out).
pub(crate) struct ApiError(CacheError);

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self.0 {
            CacheError::NotFound => StatusCode::NOT_FOUND.into_response(),
            e => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
        }
    }
}

async fn get_user(State(s): State<AppState>, Path(id): Path<u64>) -> Result<Json<User>, ApiError> {
    let db = s.db.clone();
    // On a miss: one query for every concurrent caller of this id, then stored (default TTL).
    let user =
        s.users.get(&id, move |id| async move { db.user(id).await.ok_or(CacheError::NotFound) }).await?;
    Ok(Json(user))
}

async fn get_team(State(s): State<AppState>, Path(team): Path<String>) -> Result<Json<Vec<User>>, ApiError> {
    if let Some(roster) = s.teams.get_if_present(&team).await? {
        return Ok(Json(roster));
    }
    let roster = s.db.team(&team).await;
    let mut tags = vec![format!("team:{team}")];
    tags.extend(roster.iter().map(|u| format!("user:{}", u.id)));
    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    s.teams.set_with_ttl(&team, &roster, Ttl::After(Duration::from_secs(60)), &tags).await?;
    Ok(Json(roster))
}

/// What `PUT /users/{id}` answers: the user stored, and how many cached rosters it removed.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Updated {
    pub(crate) user: User,
    pub(crate) rosters_invalidated: u64,
}

async fn put_user(
    State(s): State<AppState>,
    Path(id): Path<u64>,
    Json(update): Json<UserUpdate>,
) -> Result<Json<Updated>, ApiError> {
    let user = User { id, name: update.name, team: update.team };
    // The database first, then the cache: a read after this returns loads the new value.
    s.db.update(user.clone()).await;
    s.users.invalidate(&id).await?;
    // The rosters that list this user (its old team's), and the new team's, which does not
    // list the user yet: one call, every shard.
    let (user_tag, team_tag) = (format!("user:{id}"), format!("team:{}", user.team));
    let rosters_invalidated = s.teams.invalidate_by_tags(&[&user_tag, &team_tag]).await?;
    Ok(Json(Updated { user, rosters_invalidated }))
}

/// What `GET /stats` answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Stats {
    /// Queries the database served.
    pub(crate) database_queries: u64,
    /// The user namespace's hits and misses.
    pub(crate) user_hits: u64,
    pub(crate) user_misses: u64,
}

async fn stats(State(s): State<AppState>) -> Json<Stats> {
    let c = s.users.stats();
    Json(Stats {
        database_queries: s.db.queries.load(Ordering::Relaxed),
        user_hits: c.hits,
        user_misses: c.misses,
    })
}

/// The users the example's database starts with.
pub(crate) fn sample_users() -> Vec<User> {
    let user = |id, name: &str, team: &str| User { id, name: name.into(), team: team.into() };
    vec![user(1, "Alice", "red"), user(2, "Bob", "red"), user(3, "Carol", "blue")]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "redis://127.0.0.1:7000".to_owned());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3000".to_owned());

    let provider = slotcache_tokio::provider(ProviderConfig::from_url(&url)?).await?;
    let state = AppState::new(&provider, Arc::new(Database::with(sample_users())))?;
    // The example's database starts anew on every run: so does its cache.
    state.users.invalidate_all().await?;
    state.teams.invalidate_all().await?;

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown()).await?;
    provider.close().await;
    Ok(())
}

/// Resolves on Ctrl-C.
async fn shutdown() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
