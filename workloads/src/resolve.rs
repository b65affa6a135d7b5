//! Host name resolution for the load generator that works in a static binary.
//!
//! A statically linked glibc cannot load `libnss_dns` inside an image that holds nothing but
//! the binary, so `getaddrinfo` fails there for every name that is not in /etc/hosts, such as
//! a Service's DNS name. This resolver speaks DNS itself (hickory, configured from
//! /etc/resolv.conf with its search domains, and /etc/hosts) and falls back to the system
//! resolver when that finds nothing, so it behaves the same on a host and in a Pod.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::TokioResolver;

/// Why a host name could not be resolved.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {reason}")]
pub struct ResolveError {
    pub host: String,
    pub reason: String,
}

/// Resolves host names with DNS (hickory) first and the system resolver second.
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

    /// The socket addresses of `host` (a name or an IP literal) on `port`.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ResolveError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let mut dns_error = None;
        if let Some(dns) = &self.dns {
            match dns.lookup_ip(host).await {
                Ok(lookup) => {
                    let addresses: Vec<SocketAddr> =
                        lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
                    if !addresses.is_empty() {
                        return Ok(addresses);
                    }
                }
                Err(error) => dns_error = Some(error.to_string()),
            }
        }
        match tokio::net::lookup_host((host, port)).await {
            Ok(addresses) => {
                let addresses: Vec<SocketAddr> = addresses.collect();
                if addresses.is_empty() {
                    Err(ResolveError {
                        host: host.to_owned(),
                        reason: "no addresses".to_owned(),
                    })
                } else {
                    Ok(addresses)
                }
            }
            Err(system_error) => Err(ResolveError {
                host: host.to_owned(),
                reason: match dns_error {
                    Some(dns_error) => format!("DNS: {dns_error}; system: {system_error}"),
                    None => system_error.to_string(),
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn localhost_resolves_to_loopback() {
        let addresses = Resolver::from_system()
            .resolve("localhost", 8080)
            .await
            .expect("localhost resolves");
        assert!(!addresses.is_empty());
        assert!(
            addresses
                .iter()
                .all(|address| address.ip().is_loopback() && address.port() == 8080),
            "{addresses:?}"
        );
    }

    #[tokio::test]
    async fn ip_literals_need_no_lookup() {
        let resolver = Resolver { dns: None };
        assert_eq!(
            resolver.resolve("127.0.0.1", 1).await.unwrap(),
            ["127.0.0.1:1".parse().unwrap()]
        );
        assert_eq!(
            resolver.resolve("[::1]", 2).await.unwrap(),
            ["[::1]:2".parse().unwrap()]
        );
    }
}
