//! Our own accept loop around the axum router.
//!
//! `axum::serve` cannot drop one connection on purpose, and faults need
//! exactly that: each connection gets a [`ConnControl`] in its request
//! extensions, and a handler that triggers it makes the connection task drop
//! the socket without an answer — which is what a client sees when Shopify
//! times out or resets. Shutdown is graceful: stop accepting, let in-flight
//! requests finish for a moment, then drop the rest.

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tower_service::Service;

/// How long in-flight requests get to finish on shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Lets a handler drop the connection it is being served on.
#[derive(Clone)]
pub(crate) struct ConnControl(Arc<Notify>);

impl ConnControl {
    /// The connection is closed without a response as soon as its task runs.
    pub fn drop_connection(&self) {
        self.0.notify_one();
    }
}

/// Serves `router` on `listener` until `shutdown` flips to true (or its
/// sender is dropped).
pub(crate) async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_conn(stream, router.clone(), shutdown.clone()));
                }
                Err(e) => {
                    // Typically EMFILE under load: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = shutdown.changed() => {
                if r.is_err() || *shutdown.borrow() {
                    break;
                }
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
}

async fn serve_conn(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let abort = Arc::new(Notify::new());
    let control = ConnControl(abort.clone());
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(control.clone());
        let mut router = router.clone();
        async move { router.call(req).await }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let mut draining = *shutdown.borrow();
    if draining {
        conn.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            // Dropping `conn` closes the socket mid-request.
            _ = abort.notified() => break,
            _ = shutdown.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
