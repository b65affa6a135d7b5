//! Host name resolution for the load generator that works in a static binary.
//!
//! A statically linked glibc cannot load `libnss_dns` inside an image that holds nothing but
//! the binary, so `getaddrinfo` fails there for every name that is not in /etc/hosts, such as
//! a Service's DNS name. This resolver speaks DNS itself (hickory, configured from
//! /etc/resolv.conf with its search domains, and /etc/hosts) and falls back to the system
//! resolver when that finds nothing, so it behaves the same on a host and in a Pod.

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hickory_resolver::TokioResolver;
use hyper_util::client::legacy::connect::dns::Name;

type BoxError = Box<dyn Error + Send + Sync>;

/// A `tower` service that hyper's `HttpConnector` calls for each host name.
#[derive(Clone)]
pub struct Resolver {
    dns: Option<Arc<TokioResolver>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("dns", &self.dns.is_some())
            .finish()
    }
}

impl Resolver {
    /// Reads the system configuration; without a readable /etc/resolv.conf only the system
    /// resolver is used.
    pub fn from_system() -> Self {
        let dns = TokioResolver::builder_tokio()
            .ok()
            .and_then(|builder| builder.build().ok())
            .map(Arc::new);
        Self { dns }
    }
}

async fn resolve(
    dns: Option<Arc<TokioResolver>>,
    host: String,
) -> Result<Vec<SocketAddr>, BoxError> {
    let mut dns_error = None;
    if let Some(dns) = dns {
        match dns.lookup_ip(host.as_str()).await {
            Ok(lookup) => {
                let addresses: Vec<SocketAddr> =
                    lookup.iter().map(|ip| SocketAddr::new(ip, 0)).collect();
                if !addresses.is_empty() {
                    return Ok(addresses);
                }
            }
            Err(error) => dns_error = Some(error),
        }
    }
    match tokio::net::lookup_host((host.as_str(), 0)).await {
        Ok(addresses) => Ok(addresses.collect()),
        Err(system_error) => Err(match dns_error {
            Some(dns_error) => {
                format!("cannot resolve {host}: DNS: {dns_error}; system: {system_error}").into()
            }
            None => format!("cannot resolve {host}: {system_error}").into(),
        }),
    }
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let dns = self.dns.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move { resolve(dns, host).await.map(Vec::into_iter) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower_service::Service;

    #[tokio::test]
    async fn localhost_resolves_to_loopback() {
        let mut resolver = Resolver::from_system();
        let addresses: Vec<SocketAddr> = resolver
            .call("localhost".parse().unwrap())
            .await
            .expect("localhost resolves")
            .collect();
        assert!(!addresses.is_empty());
        assert!(
            addresses.iter().all(|address| address.ip().is_loopback()),
            "{addresses:?}"
        );
    }
}
