//! Credentials that rotate: a [`CredentialsProvider`] the client asks on connect and on a
//! schedule, and [`Client::set_credentials`] that re-authenticates live connections.

use std::sync::Arc;
use std::time::Duration;

use futures_channel::oneshot;
use slotcache_core::cache::SharedError;
use slotcache_core::client::{Password, Reply, RequestError};

use crate::driver::Msg;
use crate::error::Error;
use crate::handle::{Client, Config};
use crate::runtime::{BoxFuture, Runtime};

/// An ACL user name (`None`: the `default` user) and its password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// The ACL user; `None` for `default`.
    pub username: Option<String>,
    /// The password (never shown by `Debug`).
    pub password: Password,
}

/// Where a client gets its credentials when they rotate (a secrets manager, a token service,
/// a file a sidecar rewrites).
///
/// The model:
///
/// - **Who calls it, when.** [`Client::connect_with_credentials`] calls it once before the
///   client starts (those credentials authenticate the first connections), then every
///   `interval` from a task of its own, until the client is closed or dropped. It is never
///   called on the path of a request, and never by two callers at once.
/// - **What happens with a result.** Credentials equal to the current ones change nothing.
///   New ones go to the client ([`Client::set_credentials`]): connections opened from then on
///   authenticate with them, and every open connection gets `AUTH user password` behind the
///   commands already on it, so no request is dropped or delayed. For a rotation, make the new
///   password valid on every node before the provider returns it, and remove the old one only
///   once every client has had a turn (one `interval` plus the request timeout).
/// - **On failure.** An error from the provider is logged (`tracing` warning) and the current
///   credentials stay; the next turn asks again. Credentials the servers refuse are a typed
///   error: the refused re-authentication is logged with its [`RequestError::Auth`] (the
///   connection keeps its previous identity), and a request that needs a new connection fails
///   with [`RequestError::Auth`] naming the node and the server's answer (`WRONGPASS`). At
///   connect, a provider error fails [`Client::connect_with_credentials`] with
///   [`Error::Credentials`].
pub trait CredentialsProvider: Send + Sync + 'static {
    /// The credentials to use from now on.
    fn credentials(&self) -> BoxFuture<Result<Credentials, SharedError>>;
}

impl Client {
    /// Switches to new credentials without dropping a request (see
    /// [`slotcache_core::client::Client::set_credentials`]): new connections use them, and open
    /// connections are re-authenticated with `AUTH`, ordered with their traffic.
    ///
    /// # Errors
    /// [`RequestError::Auth`] (inside [`Error::Request`]) when a node refused them (the first
    /// refusal); [`Error::Closed`].
    pub async fn set_credentials(&self, credentials: Credentials) -> Result<(), Error> {
        send_credentials(self.sender(), credentials).await
    }

    /// [`Client::connect`] with credentials from `provider`, asked now and then every
    /// `interval` (see [`CredentialsProvider`] for the whole model); the credentials in
    /// `config` are replaced.
    ///
    /// # Errors
    /// [`Error::Credentials`] when the provider fails now; what [`Client::connect`] returns.
    pub async fn connect_with_credentials(
        rt: Arc<dyn Runtime>,
        config: Config,
        provider: Arc<dyn CredentialsProvider>,
        interval: Duration,
    ) -> Result<Self, Error> {
        let client = Self::start_with_credentials(rt, config, provider, interval).await?;
        client.send(slotcache_core::client::Cmd::new("PING")).await?;
        Ok(client)
    }

    /// [`Client::start`] with credentials from `provider` (asked now, then every `interval`),
    /// without waiting for the cluster.
    ///
    /// # Errors
    /// [`Error::Credentials`] when the provider fails now; what [`Client::start`] returns.
    pub async fn start_with_credentials(
        rt: Arc<dyn Runtime>,
        mut config: Config,
        provider: Arc<dyn CredentialsProvider>,
        interval: Duration,
    ) -> Result<Self, Error> {
        let first = provider.credentials().await.map_err(Error::Credentials)?;
        config.client.username = first.username.clone();
        config.client.password = Some(first.password.clone());
        let client = Self::start(rt.clone(), config)?;
        let weak = client.sender().downgrade();
        rt.spawn(Box::pin(refresh(rt.clone(), weak, provider, interval, first)));
        Ok(client)
    }
}

/// Hands credentials to the driver and waits for the re-authentication of the open connections.
async fn send_credentials(
    driver: &async_channel::Sender<Msg>,
    credentials: Credentials,
) -> Result<(), Error> {
    let (tx, rx) = oneshot::channel();
    let msg = Msg::Credentials(credentials.username, credentials.password, tx);
    driver.send(msg).await.map_err(|_| Error::Closed)?;
    match rx.await.map_err(|_| Error::Closed)?? {
        Reply::PerNode(results) => results
            .into_iter()
            .find_map(|(_, r)| match r {
                Err(e @ RequestError::Auth { .. }) => Some(Err(Error::Request(e))),
                _ => None,
            })
            .unwrap_or(Ok(())),
        _ => Ok(()),
    }
}

/// Asks the provider every `interval` and hands new credentials to the client, until the
/// client is closed or every handle is dropped (it holds no handle itself).
async fn refresh(
    rt: Arc<dyn Runtime>,
    client: async_channel::WeakSender<Msg>,
    provider: Arc<dyn CredentialsProvider>,
    interval: Duration,
    mut current: Credentials,
) {
    loop {
        rt.sleep_until(rt.now() + interval).await;
        let Some(tx) = client.upgrade() else { return };
        if tx.is_closed() {
            return;
        }
        let next = match provider.credentials().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "slotcache: the credentials provider failed; keeping the current credentials");
                continue;
            }
        };
        if next == current {
            continue;
        }
        match send_credentials(&tx, next.clone()).await {
            Ok(()) => current = next,
            Err(Error::Closed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "slotcache: new credentials refused");
                current = next;
            }
        }
    }
}
