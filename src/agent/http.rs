//! The metrics endpoint: `GET /metrics` answers the registry's OpenMetrics text (tiny_http
//! parses the requests), anything else is a 404. It only reads the registry; it samples
//! nothing and changes nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use super::metrics::Metrics;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A server answering on its own thread for as long as the agent runs.
pub struct MetricsServer {
    /// Where it listens (the port the system chose, for `:0`).
    pub addr: SocketAddr,
}

/// Listen on `addr` and answer scrapes from a thread of its own.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> std::io::Result<MetricsServer> {
    let server = tiny_http::Server::http(addr).map_err(std::io::Error::other)?;
    let addr = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| std::io::Error::other("not an IP address"))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for request in server.incoming_requests() {
                let path = request.url().split('?').next().unwrap_or("");
                let response = if *request.method() == tiny_http::Method::Get && path == "/metrics"
                {
                    let header =
                        tiny_http::Header::from_bytes("Content-Type", CONTENT_TYPE).expect("valid");
                    tiny_http::Response::from_string(metrics.encode()).with_header(header)
                } else {
                    tiny_http::Response::from_string("gridlock watch serves GET /metrics only\n")
                        .with_status_code(404)
                };
                // A scraper that hung up is its own business.
                let _ = request.respond(response);
            }
        })?;
    Ok(MetricsServer { addr })
}
