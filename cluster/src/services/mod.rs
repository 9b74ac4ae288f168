//! The demo services that run on the cluster (docs/services.md): `gateway` (the order
//! API), `worker` (consumes payment jobs, calls payments through the resilience
//! policies) and `payments` (a simulated third party).

pub mod gateway;
pub mod latency;
pub mod node_client;
pub mod payments;
pub mod red;
pub mod worker;

/// The system name the demo's queues and stores report (`messaging.system`).
pub const SYSTEM: &str = crate::node::spans::SYSTEM;

/// Serves `app` on `listener` until `shutdown` resolves, with TCP_NODELAY on every
/// connection (small request/response exchanges must not wait for delayed ACKs).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
