//! The CI paths' own pieces, run without Docker and without a cluster (issue 15): the
//! shared Corefile against the CoreDNS build both clusters run (upstream's plugin
//! order), the kind node image pin, the shared kwok GPU-pool manifest, and the
//! workflow's steps with fake `kind`, `docker`, `kubectl`, `cargo` and `sudo`.
//!
//! What needs a tool that is missing (Go for the CoreDNS build, bash) fails with a
//! message saying so; nothing here passes without having run.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    // At run time (cargo and nextest set it for the test process): a test binary reused
    // from a shared target dir keeps the compile-time path of the checkout that built it.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative))
        .unwrap_or_else(|e| panic!("reading {relative}: {e}"))
}

fn require_tool(tool: &str, why: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(found, "`{tool}` is not installed: it is needed {why}");
}

// ------------------------------------------------------------------ the Corefile

/// The Corefile of `ci/addons/coredns.yaml` (the ConfigMap's literal block).
fn shared_corefile() -> String {
    let manifest = read("ci/addons/coredns.yaml");
    let mut lines = manifest.lines().skip_while(|l| l.trim() != "Corefile: |");
    lines
        .next()
        .expect("ci/addons/coredns.yaml has a `Corefile: |` block");
    let mut corefile = String::new();
    for line in lines {
        if !line.is_empty() && !line.starts_with("    ") {
            break;
        }
        corefile.push_str(line.strip_prefix("    ").unwrap_or(line));
        corefile.push('\n');
    }
    corefile
}

/// A server block: its zones (with ports) and its top-level directives in file order.
#[derive(Debug)]
struct ServerBlock {
    keys: Vec<String>,
    directives: Vec<String>,
}

fn server_blocks(corefile: &str) -> Vec<ServerBlock> {
    let mut blocks = Vec::new();
    let mut depth = 0usize;
    for raw in corefile.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if depth == 0 {
            let keys = line
                .trim_end_matches('{')
                .split_whitespace()
                .map(String::from);
            blocks.push(ServerBlock {
                keys: keys.collect(),
                directives: Vec::new(),
            });
        } else if depth == 1 && line != "}" {
            let name = line.split_whitespace().next().unwrap().to_string();
            blocks.last_mut().unwrap().directives.push(name);
        }
        depth += line.matches('{').count();
        depth -= line.matches('}').count();
    }
    assert_eq!(depth, 0, "unbalanced braces in the Corefile:\n{corefile}");
    blocks
}

/// Plugins that write answers themselves (rather than wrapping the next plugin): two of
/// them in one server block answer in an order the build decides.
const ANSWERING_PLUGINS: &[&str] = &[
    "kubernetes",
    "template",
    "forward",
    "file",
    "hosts",
    "auto",
    "etcd",
    "whoami",
    "erratic",
    "chaos",
    "k8s_external",
    "secondary",
    "grpc",
    "clouddns",
    "route53",
    "azure",
];

#[test]
fn corefile_has_one_answering_plugin_per_server_block() {
    let corefile = shared_corefile();
    let blocks = server_blocks(&corefile);
    assert!(!blocks.is_empty(), "no server block in:\n{corefile}");
    for block in &blocks {
        let answering: Vec<&String> = block
            .directives
            .iter()
            .filter(|d| ANSWERING_PLUGINS.contains(&d.as_str()))
            .collect();
        assert_eq!(
            answering.len(),
            1,
            "server block {:?} has the answering plugins {answering:?}: which one answers \
             depends on the build's plugin order (upstream runs template before kubernetes); \
             give each its own server block",
            block.keys
        );
    }
    // Nothing forwards: the cluster never resolves names outside it.
    assert!(
        blocks
            .iter()
            .all(|b| !b.directives.iter().any(|d| d == "forward")),
        "the Corefile forwards queries out of the cluster:\n{corefile}"
    );
    // cluster.local and the reverse zones are kubernetes'; everything else is the catch-all.
    let zones_of = |plugin: &str| -> Vec<String> {
        blocks
            .iter()
            .filter(|b| b.directives.iter().any(|d| d == plugin))
            .flat_map(|b| {
                b.keys
                    .iter()
                    .map(|k| k.split(':').next().unwrap().to_string())
            })
            .collect()
    };
    assert_eq!(
        zones_of("kubernetes"),
        ["cluster.local", "in-addr.arpa", "ip6.arpa"]
    );
    assert_eq!(zones_of("template"), ["."]);
}

/// Upstream's plugin order: the directives of `plugin.cfg` in the pinned CoreDNS module.
fn upstream_plugin_order() -> Vec<String> {
    require_tool("go", "to find the pinned CoreDNS module's plugin.cfg");
    let module = repo().join("ci/localcluster/coredns");
    let out = Command::new("go")
        .args(["list", "-m", "-f", "{{.Dir}}", "github.com/coredns/coredns"])
        .current_dir(&module)
        .output()
        .expect("running go list");
    assert!(
        out.status.success(),
        "go list -m github.com/coredns/coredns failed (run `go mod download` in {}): {}",
        module.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let cfg = std::fs::read_to_string(dir.join("plugin.cfg")).expect("reading plugin.cfg");
    cfg.lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains(':'))
        .map(|l| l.split(':').next().unwrap().trim().to_string())
        .collect()
}

#[test]
fn coredns_build_keeps_upstreams_plugin_order() {
    let order = upstream_plugin_order();
    let position = |name: &str| order.iter().position(|d| d == name);
    // The fact issue 15 rests on: upstream runs template before kubernetes.
    assert!(
        position("template").unwrap() < position("kubernetes").unwrap(),
        "upstream's plugin.cfg no longer runs template before kubernetes: {order:?}"
    );
    // Our build must not reorder them: it runs dnsserver.Directives as upstream generates
    // them from plugin.cfg, so the local cluster runs the CoreDNS that kind's image runs.
    let main_go = read("ci/localcluster/coredns/main.go");
    let code: String = main_go
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !code.contains("Directives =")
            && !code.contains("Directives=")
            && !code.contains("Directives = append"),
        "ci/localcluster/coredns/main.go sets dnsserver.Directives: its plugin order is then \
         not upstream's (plugin.cfg runs template at {:?}, kubernetes at {:?})",
        position("template"),
        position("kubernetes")
    );
    // Every plugin the Corefile names is compiled in.
    let imports: Vec<&str> = main_go
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("_ \"github.com/coredns/coredns/plugin/")
        })
        .map(|l| l.trim_end_matches('"'))
        .collect();
    for block in server_blocks(&shared_corefile()) {
        for directive in &block.directives {
            let package = if directive == "prometheus" {
                "metrics"
            } else {
                directive.as_str()
            };
            assert!(
                imports.contains(&package),
                "the Corefile uses `{directive}`, which the CoreDNS build does not import"
            );
        }
    }
}

// A fake Kubernetes API server on loopback: enough of it for CoreDNS's kubernetes plugin
// (list and watch of Services, EndpointSlices, Namespaces), answering JSON.

struct FakeApi {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn fake_api(objects: BTreeMap<&'static str, Vec<serde_json::Value>>) -> FakeApi {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let objects = Arc::new(objects);
    let stop_accept = stop.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop_accept.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let objects = objects.clone();
            let stop = stop_accept.clone();
            std::thread::spawn(move || {
                let _ = serve_api(stream, &objects, &stop);
            });
        }
    });
    FakeApi { port, stop }
}

fn serve_api(
    stream: TcpStream,
    objects: &BTreeMap<&'static str, Vec<serde_json::Value>>,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            if header.trim().is_empty() {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body)?;
        let target = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let params: BTreeMap<&str, &str> = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let kind = match path {
            "/api/v1/services" => Some(("ServiceList", "v1")),
            "/api/v1/namespaces" => Some(("NamespaceList", "v1")),
            "/api/v1/pods" => Some(("PodList", "v1")),
            "/apis/discovery.k8s.io/v1/endpointslices" => {
                Some(("EndpointSliceList", "discovery.k8s.io/v1"))
            }
            _ => None,
        };
        let Some((list_kind, api_version)) = kind else {
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
            respond(&mut out, "404 Not Found", &status.to_string())?;
            continue;
        };
        let items = objects.get(path).cloned().unwrap_or_default();
        if params.get("watch") == Some(&"true") {
            // A watch: the initial events when asked for them (watch-list), then nothing
            // until the test ends.
            write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )?;
            if params.get("sendInitialEvents") == Some(&"true") {
                for item in &items {
                    chunk(
                        &mut out,
                        &serde_json::json!({"type": "ADDED", "object": item}),
                    )?;
                }
                let object_kind = list_kind.trim_end_matches("List");
                let bookmark = serde_json::json!({"type": "BOOKMARK", "object": {
                    "kind": object_kind, "apiVersion": api_version,
                    "metadata": {"resourceVersion": "1", "annotations": {"k8s.io/initial-events-end": "true"}}}});
                chunk(&mut out, &bookmark)?;
            }
            out.flush()?;
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
            }
            return Ok(());
        }
        let list = serde_json::json!({
            "kind": list_kind, "apiVersion": api_version,
            "metadata": {"resourceVersion": "1"}, "items": items,
        });
        respond(&mut out, "200 OK", &list.to_string())?;
    }
}

fn respond(out: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

fn chunk(out: &mut TcpStream, event: &serde_json::Value) -> std::io::Result<()> {
    let line = format!("{event}\n");
    write!(out, "{:x}\r\n{line}\r\n", line.len())?;
    out.flush()
}

fn cluster_objects() -> BTreeMap<&'static str, Vec<serde_json::Value>> {
    let meta = |ns: &str, name: &str| serde_json::json!({"name": name, "namespace": ns, "uid": format!("{ns}-{name}"), "resourceVersion": "1"});
    let service = |ns: &str, name: &str, ip: &str, port: u16| {
        serde_json::json!({"kind": "Service", "apiVersion": "v1", "metadata": meta(ns, name),
            "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                     "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}})
    };
    let slice = |ns: &str, service: &str, ip: &str, port: u16| {
        let mut m = meta(ns, &format!("{service}-abcde"));
        m["labels"] = serde_json::json!({"kubernetes.io/service-name": service});
        serde_json::json!({"kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1", "metadata": m,
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}]})
    };
    let namespace = |name: &str| {
        serde_json::json!({"kind": "Namespace", "apiVersion": "v1",
            "metadata": {"name": name, "uid": name, "resourceVersion": "1"}, "status": {"phase": "Active"}})
    };
    BTreeMap::from([
        (
            "/api/v1/services",
            vec![
                service("default", "kubernetes", "10.96.0.1", 443),
                service("shop", "web", "10.96.12.34", 80),
            ],
        ),
        (
            "/apis/discovery.k8s.io/v1/endpointslices",
            vec![
                slice("default", "kubernetes", "10.244.0.1", 6443),
                slice("shop", "web", "10.244.0.7", 8080),
            ],
        ),
        (
            "/api/v1/namespaces",
            vec![
                namespace("default"),
                namespace("kube-system"),
                namespace("shop"),
            ],
        ),
    ])
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The CoreDNS build both clusters run (built once by build.sh, then cached).
fn coredns_binary() -> PathBuf {
    require_tool("go", "to build CoreDNS (ci/localcluster/build.sh coredns)");
    let out = Command::new(repo().join("ci/localcluster/build.sh"))
        .arg("coredns")
        .stderr(Stdio::inherit())
        .output()
        .expect("running ci/localcluster/build.sh coredns");
    assert!(
        out.status.success(),
        "ci/localcluster/build.sh coredns failed"
    );
    let dir = String::from_utf8(out.stdout).unwrap();
    let binary = PathBuf::from(dir.trim()).join("coredns");
    assert!(
        binary.is_file(),
        "no CoreDNS binary at {}",
        binary.display()
    );
    binary
}

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shared Corefile, made to run as a test process: loopback high ports, and the
/// fake API server as the kubernetes plugin's endpoint. Nothing else changes.
fn corefile_for_test(
    corefile: &str,
    dns: u16,
    health: u16,
    ready: u16,
    metrics: u16,
    api: u16,
) -> String {
    let mut out = String::new();
    for line in corefile.lines() {
        let trimmed = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        let replaced = if !line.starts_with(' ') && trimmed.ends_with('{') {
            line.replace(":53", &format!(":{dns}"))
        } else if trimmed.starts_with("health") {
            format!(
                "{indent}health 127.0.0.1:{health}{}",
                trimmed.strip_prefix("health").unwrap()
            )
        } else if trimmed == "ready" {
            format!("{indent}ready 127.0.0.1:{ready}")
        } else if trimmed.starts_with("prometheus") {
            format!("{indent}prometheus 127.0.0.1:{metrics}")
        } else if trimmed.starts_with("kubernetes") && trimmed.ends_with('{') {
            format!("{line}\n{indent}   endpoint http://127.0.0.1:{api}")
        } else {
            line.to_string()
        };
        out.push_str(&replaced);
        out.push('\n');
    }
    out
}

/// One DNS query over UDP: the response code and the answers (A as an address, PTR as a name).
fn query(port: u16, name: &str, qtype: u16) -> Result<(u8, Vec<String>), String> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut packet = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.trim_end_matches('.').split('.') {
        packet.push(label.len() as u8);
        packet.extend_from_slice(label.as_bytes());
    }
    packet.extend_from_slice(&[0, (qtype >> 8) as u8, qtype as u8, 0, 1]);
    socket.send_to(&packet, ("127.0.0.1", port)).unwrap();
    let mut buf = [0u8; 1500];
    let n = socket
        .recv(&mut buf)
        .map_err(|e| format!("no DNS answer from 127.0.0.1:{port} within 3 s: {e}"))?;
    let msg = &buf[..n];
    let rcode = msg[3] & 0x0f;
    let answers = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = 12;
    let (_, next) = dns_name(msg, at);
    at = next + 4;
    let mut out = Vec::new();
    for _ in 0..answers {
        let (_, next) = dns_name(msg, at);
        let rtype = u16::from_be_bytes([msg[next], msg[next + 1]]);
        let len = u16::from_be_bytes([msg[next + 8], msg[next + 9]]) as usize;
        let data = next + 10;
        match rtype {
            1 => out.push(
                Ipv4Addr::new(msg[data], msg[data + 1], msg[data + 2], msg[data + 3]).to_string(),
            ),
            12 => out.push(dns_name(msg, data).0),
            _ => {}
        }
        at = data + len;
    }
    Ok((rcode, out))
}

/// A (possibly compressed) name at `at`: the name and the offset just after it.
fn dns_name(msg: &[u8], mut at: usize) -> (String, usize) {
    let mut labels = Vec::new();
    let mut end = None;
    loop {
        let len = msg[at] as usize;
        if len == 0 {
            end.get_or_insert(at + 1);
            break;
        }
        if len & 0xc0 == 0xc0 {
            end.get_or_insert(at + 2);
            at = ((len & 0x3f) << 8) | msg[at + 1] as usize;
            continue;
        }
        labels.push(String::from_utf8_lossy(&msg[at + 1..at + 1 + len]).to_string());
        at += 1 + len;
    }
    (labels.join(".") + ".", end.unwrap())
}

const NOERROR: u8 = 0;
const NXDOMAIN: u8 = 3;
const A: u16 = 1;
const PTR: u16 = 12;

#[test]
fn corefile_resolves_cluster_names_and_nothing_else_with_the_build_both_clusters_run() {
    let binary = coredns_binary();
    let api = fake_api(cluster_objects());
    let (dns, health, ready, metrics) = (free_port(), free_port(), free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let corefile = corefile_for_test(&shared_corefile(), dns, health, ready, metrics, api.port);
    std::fs::write(dir.path().join("Corefile"), &corefile).unwrap();
    let log = std::fs::File::create(dir.path().join("coredns.log")).unwrap();
    let _coredns = Running(
        Command::new(&binary)
            .args(["-conf", "Corefile"])
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting CoreDNS"),
    );
    let coredns_log =
        || std::fs::read_to_string(dir.path().join("coredns.log")).unwrap_or_default();

    // Ready: the kubernetes plugin has synced with the (fake) API server.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = TcpStream::connect(("127.0.0.1", ready))
            .and_then(|mut s| {
                s.write_all(b"GET /ready HTTP/1.0\r\n\r\n")?;
                let mut r = String::new();
                s.read_to_string(&mut r)?;
                Ok(r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200"))
            })
            .unwrap_or(false);
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "CoreDNS not ready within 30 s with the Corefile:\n{corefile}\nlog:\n{}",
            coredns_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Ready is served before every listener is up: wait for the first DNS answer too.
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Err(e) = query(dns, "kubernetes.default.svc.cluster.local", A) {
        assert!(
            Instant::now() < deadline,
            "CoreDNS never answered: {e}\nlog:\n{}",
            coredns_log()
        );
    }

    let cases: &[(&str, u16, u8, &[&str])] = &[
        // Services by name: what the smoke test and every load Job use.
        (
            "kubernetes.default.svc.cluster.local",
            A,
            NOERROR,
            &["10.96.0.1"],
        ),
        ("web.shop.svc.cluster.local", A, NOERROR, &["10.96.12.34"]),
        ("missing.shop.svc.cluster.local", A, NXDOMAIN, &[]),
        // A pod's search path tries the other suffixes first: NXDOMAIN, at once.
        (
            "web.shop.svc.cluster.local.shop.svc.cluster.local",
            A,
            NXDOMAIN,
            &[],
        ),
        ("web.shop.svc.cluster.local.corp.example", A, NXDOMAIN, &[]),
        // Nothing outside the cluster resolves.
        ("example.com", A, NXDOMAIN, &[]),
        ("registry.k8s.io", A, NXDOMAIN, &[]),
        // Reverse lookups: the cluster's addresses by name, any other NXDOMAIN.
        (
            "1.0.96.10.in-addr.arpa",
            PTR,
            NOERROR,
            &["kubernetes.default.svc.cluster.local."],
        ),
        (
            "34.12.96.10.in-addr.arpa",
            PTR,
            NOERROR,
            &["web.shop.svc.cluster.local."],
        ),
        ("8.8.8.8.in-addr.arpa", PTR, NXDOMAIN, &[]),
    ];
    let mut wrong = Vec::new();
    for (name, qtype, rcode, answers) in cases {
        match query(dns, name, *qtype) {
            Ok((got_rcode, got)) if got_rcode == *rcode && got == *answers => {}
            Ok((got_rcode, got)) => wrong.push(format!(
                "{name} (type {qtype}): rcode {got_rcode} {got:?}, expected rcode {rcode} {answers:?}"
            )),
            Err(e) => wrong.push(format!("{name} (type {qtype}): {e}")),
        }
    }
    assert!(
        wrong.is_empty(),
        "the shared Corefile under upstream's plugin order answers wrongly:\n  {}\nCorefile:\n{corefile}\nlog:\n{}",
        wrong.join("\n  "),
        coredns_log()
    );
}

// ------------------------------------------------------------------ the kind node image

#[test]
fn kind_node_images_are_ones_the_pinned_kind_release_lists_by_digest() {
    let listed = read("ci/kind/node-images.txt");
    let kind_version = listed
        .lines()
        .find_map(|l| l.strip_prefix("kind "))
        .expect("ci/kind/node-images.txt names the kind release");
    let images: Vec<&str> = listed
        .lines()
        .filter(|l| l.starts_with("kindest/node:"))
        .collect();
    assert!(
        !images.is_empty(),
        "ci/kind/node-images.txt lists no node image"
    );
    for image in &images {
        assert!(
            image.contains("@sha256:") && image.len() > image.find("@sha256:").unwrap() + 8 + 63
        );
    }
    let cluster = read("ci/kind/cluster.yaml");
    let used: Vec<&str> = cluster
        .lines()
        .filter_map(|l| l.trim().strip_prefix("image:"))
        .map(str::trim)
        .collect();
    assert!(!used.is_empty(), "ci/kind/cluster.yaml names no node image");
    for image in used {
        assert!(
            images.contains(&image),
            "ci/kind/cluster.yaml uses {image}, which kind {kind_version}'s release notes do not \
             list as built for it (by digest): {images:?}"
        );
    }
    // The kind path installs that release.
    assert!(
        read("ci/tools.sh").contains("ci/kind/node-images.txt")
            || read("ci/tools.sh").contains("kind/node-images.txt"),
        "ci/tools.sh does not install kind at the release ci/kind/node-images.txt names"
    );
}

// ------------------------------------------------------------------ the GPU pool

#[test]
fn gpu_pool_is_one_manifest_of_kwok_nodes_applied_and_checked_on_both_paths() {
    let manifest = read("ci/addons/gpu-pool.yaml");
    let nodes: Vec<&str> = manifest.split("\n---\n").collect();
    assert_eq!(nodes.len(), 2, "the GPU pool has two nodes");
    for (i, node) in nodes.iter().enumerate() {
        let name = format!("gpu-pool-{}", i + 1);
        for needle in [
            "kind: Node".to_string(),
            format!("name: {name}"),
            "kwok.x-k8s.io/node: fake".into(),
            "type: kwok".into(),
            "node-pool: gpu".into(),
            "nvidia.com/gpu.present: \"true\"".into(),
            "accelerator: nvidia-tesla-t4".into(),
            "taints: [{key: nvidia.com/gpu, value: present, effect: NoSchedule}]".into(),
            "allocatable: {cpu: \"8\", memory: 30Gi, pods: \"110\", nvidia.com/gpu: \"1\"}".into(),
            "capacity: {cpu: \"8\", memory: 30Gi, pods: \"110\", nvidia.com/gpu: \"1\"}".into(),
        ] {
            assert!(
                node.contains(&needle),
                "{name} in ci/addons/gpu-pool.yaml lacks `{needle}`:\n{node}"
            );
        }
    }
    // Both paths take it from ci/addons/apply.sh, which checks it; neither makes its own.
    assert!(read("ci/addons/apply.sh").contains("gpu-pool.yaml"));
    let local = read("ci/localcluster/cluster.sh");
    assert!(
        !local.contains("kind: Node"),
        "cluster.sh still writes GPU nodes of its own"
    );
    assert!(local.contains("ci/addons/apply.sh"));
    let kind = read("ci/kind/up.sh");
    assert!(
        !kind.contains("nvidia.com~1gpu"),
        "up.sh still patches a GPU into a real worker"
    );
    assert!(kind.contains("ci/addons/apply.sh"));
    assert!(
        !read("ci/kind/cluster.yaml").contains("node-pool"),
        "kind has a GPU worker of its own"
    );
}

// ------------------------------------------------------------------ scripts with fakes

/// A directory of fake commands for the scripts to find first on PATH, and a log every
/// fake appends its arguments to.
struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new() -> Fakes {
        let fakes = Fakes {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(fakes.path("bin")).unwrap();
        std::fs::write(fakes.path("calls.log"), "").unwrap();
        fakes
    }
    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }
    /// A fake command: a bash script that logs `name args...` and then runs `body`.
    fn command(&self, name: &str, body: &str) {
        let script = format!(
            "#!/usr/bin/env bash\nset -u\nall=\"$*\"\nprintf '%s\\n' \"{name} ${{all//$'\\n'/ }}\" >>\"{log}\"\n{body}\n",
            log = self.path("calls.log").display()
        );
        let path = self.path("bin").join(name);
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("calls.log"))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }
    fn run(&self, script: &str, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
        require_tool("bash", "to run the CI scripts");
        let path = format!(
            "{}:{}",
            self.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new(repo().join(script));
        command
            .args(args)
            .env("PATH", path)
            .env("HOME", self.path("home"))
            .stdin(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command
            .output()
            .unwrap_or_else(|e| panic!("running {script}: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

/// The archives kind loads: the cluster's own, the monitoring stack's, the VPA's, KEDA's,
/// the Cluster Autoscaler's, the workloads', the test scripts' (script-runner, busybox, hey).
const KIND_ARCHIVES: [&str; 20] = [
    "coredns",
    "metrics-server",
    "prometheus",
    "prometheus-operator",
    "prometheus-config-reloader",
    "kube-state-metrics",
    "prometheus-adapter",
    "vpa-recommender",
    "vpa-updater",
    "vpa-admission-controller",
    "keda",
    "keda-metrics-apiserver",
    "keda-admission-webhooks",
    "cluster-autoscaler",
    "inference-server",
    "loadgen",
    "script-runner",
    "busybox-latest",
    "busybox-1.36",
    "hey",
];

/// Fake `kind`, `docker` and `kubectl` for the kind path, a fake kwok and fake archives.
/// `kind create` exits with $FAKE_KIND_CREATE_EXIT; `kubectl get nodes -l node-pool=gpu`
/// lists the nodes of the applied gpu-pool.yaml (Ready, 1 GPU) and $FAKE_EXTRA_GPU_NODE.
fn kind_fakes() -> (Fakes, Vec<(&'static str, String)>) {
    let fakes = Fakes::new();
    let state = fakes.path("fake-state");
    std::fs::create_dir_all(&state).unwrap();
    let s = state.display();
    fakes.command(
        "kind",
        &format!(
            r#"case "$1 $2" in
  "get clusters") [ -f "{s}/cluster" ] && echo autoscale-conformance; exit 0 ;;
  "create cluster") [ -f "$4" ] || {{ echo "no config $4" >&2; exit 1; }}
     [ "${{FAKE_KIND_CREATE_EXIT:-0}}" = 0 ] || {{ echo "fake kind: create failed" >&2; exit "$FAKE_KIND_CREATE_EXIT"; }}
     touch "{s}/cluster" ;;
  "get kubeconfig") printf 'apiVersion: v1\nkind: Config\n' ;;
  "get nodes") printf 'autoscale-conformance-control-plane\nautoscale-conformance-worker\n' ;;
  "load image-archive") [ -f "$5" ] || exit 1 ;;
  "delete cluster") rm -f "{s}/cluster" ;;
  *) echo "fake kind: unexpected $*" >&2; exit 1 ;;
esac"#
        ),
    );
    fakes.command(
        "docker",
        r#"case "$1 $2" in
  "network inspect") echo "172.18.0.0/16 fc00:f853:ccd:e793::/64 " ;;
  "exec -i") ;;
  *) echo "fake docker: unexpected $*" >&2; exit 1 ;;
esac"#,
    );
    fakes.command(
        "kubectl",
        &format!(
            r#"args=" $* "
case $args in
  *" apply "*) file=${{args##* -f }}; file=${{file%% *}}
     case $file in *gpu-pool.yaml) awk '/^  name: / {{print $2}}' "$file" >"{s}/gpu-nodes" ;; esac ;;
  *" get nodes -l node-pool=gpu "*)
     [ -f "{s}/gpu-nodes" ] && while read -r n; do echo "$n True 1"; done <"{s}/gpu-nodes"
     [ -z "${{FAKE_EXTRA_GPU_NODE:-}}" ] || echo "$FAKE_EXTRA_GPU_NODE" ;;
  *" rollout status "* | *" wait "* | *" top nodes "*) ;;
  *" -n kube-system get secret vpa-tls-certs "*) exit 1 ;;
  *" -n kube-system create secret generic vpa-tls-certs "*)
     for f in caCert serverCert serverKey; do grep -q -- "--from-file=.*/$f.pem" <<<"$args" || exit 1; done ;;
  *" create --dry-run=server -f - "*)
     echo 'Error from server: admission webhook "vpa.k8s.io" denied the request: max resource for cpu is lower than min of "2"' >&2; exit 1 ;;
  *" get pods -l app=prometheus -o name "*) echo pod/prometheus-prometheus-0 ;;
  *" create --dry-run=server "*) echo 'Error from server (Forbidden): admission webhook "vscaledobject.kb.io" denied the request: triggerName twice is defined multiple times' >&2; exit 1 ;;
  *" get --raw /api/v1/namespaces/monitoring/services/prometheus-server:80/proxy/api/v1/targets"*)
     echo '{{"data":{{"activeTargets":[{{"scrapePool":"kubernetes-pods","labels":{{}},"health":"up"}},{{"scrapePool":"kubernetes-service-endpoints","labels":{{"service":"kube-state-metrics"}},"health":"up"}}]}}}}' ;;
  *) echo "fake kubectl: unexpected $*" >&2; exit 1 ;;
esac"#
        ),
    );
    // kwok: records its flags and runs until stopped.
    std::fs::create_dir_all(fakes.path("kwok/stages")).unwrap();
    std::fs::write(
        fakes.path("kwok/stages/node-initialize.yaml"),
        "kind: Stage\n",
    )
    .unwrap();
    let kwok = fakes.path("kwok/kwok");
    std::fs::write(
        &kwok,
        format!(
            "#!/usr/bin/env bash\nprintf '%s\\n' \"kwok $*\" >>\"{}\"\nexec sleep 300\n",
            fakes.path("calls.log").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&kwok, std::fs::Permissions::from_mode(0o755)).unwrap();
    // The Prometheus Operator's build: its CRDs (one, here).
    std::fs::create_dir_all(fakes.path("operator/crds")).unwrap();
    std::fs::write(
        fakes.path("operator/crds/monitoring.coreos.com_prometheuses.yaml"),
        "kind: CustomResourceDefinition\nmetadata:\n  name: prometheuses.monitoring.coreos.com\n",
    )
    .unwrap();
    // The VPA's build: upstream's CRDs and RBAC from its module.
    std::fs::create_dir_all(fakes.path("vpa/deploy")).unwrap();
    for file in ["vpa-v1-crd-gen.yaml", "vpa-rbac.yaml"] {
        std::fs::write(fakes.path(&format!("vpa/deploy/{file}")), "kind: List\n").unwrap();
    }
    // KEDA's build: its CRDs (one, here).
    std::fs::create_dir_all(fakes.path("keda/crds")).unwrap();
    std::fs::write(
        fakes.path("keda/crds/keda.sh_scaledobjects.yaml"),
        "kind: CustomResourceDefinition\nmetadata:\n  name: scaledobjects.keda.sh\n",
    )
    .unwrap();
    std::fs::create_dir_all(fakes.path("images")).unwrap();
    for archive in KIND_ARCHIVES {
        std::fs::write(fakes.path(&format!("images/{archive}.oci.tar")), archive).unwrap();
    }
    let env = vec![
        ("CLUSTER", "kind".to_string()),
        (
            "AUTOSCALE_KIND_STATE",
            fakes.path("kind-state").display().to_string(),
        ),
        (
            "AUTOSCALE_KWOK_DIR",
            fakes.path("kwok").display().to_string(),
        ),
        (
            "AUTOSCALE_OPERATOR_DIR",
            fakes.path("operator").display().to_string(),
        ),
        ("AUTOSCALE_VPA_DIR", fakes.path("vpa").display().to_string()),
        (
            "AUTOSCALE_KEDA_DIR",
            fakes.path("keda").display().to_string(),
        ),
        (
            "AUTOSCALE_IMAGES",
            fakes.path("images").display().to_string(),
        ),
        ("AUTOSCALE_CACHE", fakes.path("cache").display().to_string()),
        (
            "CARGO_TARGET_DIR",
            fakes.path("target").display().to_string(),
        ),
    ];
    (fakes, env)
}

#[test]
fn kind_path_brings_up_the_shared_cluster_definition_with_a_fake_kind() {
    let (fakes, env) = kind_fakes();
    let (ok, stdout, stderr) = fakes.run("ci/steps.sh", &["cluster"], &env);
    let calls = fakes.calls();
    // Stop the fake kwok whatever happened.
    let (down_ok, _, down_err) = fakes.run("ci/steps.sh", &["down"], &env);
    assert!(
        ok,
        "ci/steps.sh cluster (kind) failed:\n{stderr}\ncalls:\n{}",
        calls.join("\n")
    );
    assert!(down_ok, "ci/steps.sh down (kind) failed:\n{down_err}");
    let has = |prefix: &str| calls.iter().any(|c| c.starts_with(prefix));
    let config = repo().join("ci/kind/cluster.yaml");
    assert!(
        has(&format!(
            "kind create cluster --config {} ",
            config.display()
        )),
        "{calls:#?}"
    );
    // Every archive is loaded, our CoreDNS included (kind's own would run upstream's build).
    for archive in KIND_ARCHIVES {
        let path = fakes.path(&format!("images/{archive}.oci.tar"));
        assert!(
            has(&format!(
                "kind load image-archive --name autoscale-conformance {}",
                path.display()
            )),
            "{archive} not loaded: {calls:#?}"
        );
    }
    // Both nodes isolated before any image is loaded: only the pod, service and node
    // ranges are reachable, and pulls go to a dead address.
    let first_load = calls
        .iter()
        .position(|c| c.starts_with("kind load"))
        .unwrap();
    for node in [
        "autoscale-conformance-control-plane",
        "autoscale-conformance-worker",
    ] {
        let at = calls
            .iter()
            .position(|c| c.starts_with(&format!("docker exec -i {node} sh -euc")))
            .unwrap_or_else(|| panic!("node {node} not isolated: {calls:#?}"));
        assert!(at < first_load);
        let call = &calls[at];
        for needle in [
            "REJECT",
            "ASC-ISOLATION",
            "127.0.0.1:9",
            "172.18.0.0/16",
            "10.244.0.0/16",
            "10.96.0.0/16",
        ] {
            assert!(
                call.contains(needle),
                "isolation of {node} lacks {needle}: {call}"
            );
        }
    }
    // The shared addons and GPU pool, checked; kwok with the local cluster's flags.
    for addon in [
        "gpu-pool",
        "coredns",
        "metrics-server",
        "monitoring/10-prometheus-operator",
        "monitoring/20-prometheus",
        "monitoring/30-kube-state-metrics",
        "monitoring/40-prometheus-adapter",
        "vpa/10-vpa",
        "keda/00-namespace",
        "keda/10-rbac",
        "keda/20-operator",
        "keda/30-metrics-apiserver",
        "keda/40-admission-webhooks",
    ] {
        assert!(
            calls.iter().any(|c| c.starts_with("kubectl") && c.contains(&format!("ci/addons/{addon}.yaml"))),
            "{addon}.yaml not applied: {calls:#?}"
        );
    }
    let kwok = calls
        .iter()
        .find(|c| c.starts_with("kwok "))
        .expect("kwok started");
    assert!(
        kwok.contains("--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake"),
        "{kwok}"
    );
    assert!(
        stderr.contains("GPU pool ready: gpu-pool-1 gpu-pool-2"),
        "{stderr}"
    );
    // The operator's CRDs from its build, then the stack, waited for.
    let crds = fakes.path("operator/crds/monitoring.coreos.com_prometheuses.yaml");
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("kubectl") && c.contains(&crds.display().to_string())),
        "the operator's CRDs not applied: {calls:#?}"
    );
    assert!(stderr.contains("monitoring stack ready"), "{stderr}");
    // The VPA: upstream's CRDs and RBAC from its build, a webhook certificate made here.
    for file in ["vpa-v1-crd-gen.yaml", "vpa-rbac.yaml"] {
        let path = fakes.path(&format!("vpa/deploy/{file}"));
        assert!(
            calls
                .iter()
                .any(|c| c.starts_with("kubectl") && c.contains(&path.display().to_string())),
            "{file} not applied: {calls:#?}"
        );
    }
    assert!(
        has("kubectl --kubeconfig")
            && calls
                .iter()
                .any(|c| c.contains("create secret generic vpa-tls-certs")),
        "no webhook certificate: {calls:#?}"
    );
    assert!(stderr.contains("vpa ready in "), "{stderr}");
    // KEDA's CRDs from its build, then KEDA, waited for (its webhook answering).
    let keda_crds = fakes.path("keda/crds/keda.sh_scaledobjects.yaml");
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("kubectl") && c.contains(&keda_crds.display().to_string())),
        "KEDA's CRDs not applied: {calls:#?}"
    );
    assert!(stderr.contains("keda ready in"), "{stderr}");
    assert!(stderr.contains("KUBECONFIG="), "{stderr}");
    assert!(stdout.is_empty() || !stdout.contains("error"), "{stdout}");
    let after_down = fakes.calls();
    assert!(
        after_down.contains(&"kind delete cluster --name autoscale-conformance".to_string()),
        "{after_down:#?}"
    );
    assert!(
        !fakes.path("kind-state/kwok.pid").exists(),
        "kwok left running after down"
    );
}

#[test]
fn kind_path_failures_fail_the_step_loudly() {
    // kind cannot create the cluster: the step fails, says so, and starts nothing else.
    let (fakes, mut env) = kind_fakes();
    env.push(("FAKE_KIND_CREATE_EXIT", "7".into()));
    let (ok, _, stderr) = fakes.run("ci/steps.sh", &["cluster"], &env);
    let calls = fakes.calls();
    fakes.run("ci/steps.sh", &["down"], &env);
    assert!(!ok, "a failed kind create passed the cluster step");
    assert!(
        stderr.contains("FAILED: bringing up the kind cluster failed"),
        "{stderr}"
    );
    assert!(
        !calls
            .iter()
            .any(|c| c.starts_with("kwok") || c.starts_with("kind load")),
        "{calls:#?}"
    );

    // A GPU node that is not the manifest's (kind's old patched worker): the bring-up stops.
    let (fakes, mut env) = kind_fakes();
    env.push((
        "FAKE_EXTRA_GPU_NODE",
        "autoscale-conformance-worker2 True 1".into(),
    ));
    env.push(("AUTOSCALE_GPU_POOL_WAIT", "2".into()));
    let (ok, _, stderr) = fakes.run("ci/steps.sh", &["cluster"], &env);
    fakes.run("ci/steps.sh", &["down"], &env);
    assert!(
        !ok,
        "a GPU pool unlike gpu-pool.yaml passed the cluster step"
    );
    assert!(
        stderr.contains("the GPU pool is not what gpu-pool.yaml says"),
        "{stderr}"
    );
    assert!(stderr.contains("autoscale-conformance-worker2"), "{stderr}");
}

#[test]
fn e2e_and_grade_steps_share_one_retry_policy_and_keep_the_grader_exit_status() {
    let (fakes, env) = kind_fakes();
    std::fs::create_dir_all(fakes.path("kind-state")).unwrap();
    std::fs::write(fakes.path("kind-state/kubeconfig"), "apiVersion: v1\n").unwrap();
    fakes.command(
        "cargo",
        r##"[ "$1" = run ] && echo "# report"
echo "KUBECONFIG=$KUBECONFIG" >>"$(dirname "$0")/../cargo-env"
exit "${FAKE_CARGO_EXIT:-0}""##,
    );
    let (ok, _, stderr) = fakes.run("ci/steps.sh", &["e2e"], &env);
    assert!(ok, "{stderr}");
    let calls = fakes.calls();
    assert!(
        calls.contains(&"cargo nextest run --workspace --profile e2e".to_string()),
        "{calls:#?}"
    );
    // The retry policy is the profile's, so a local `make e2e` has it too: one retry,
    // none for a live grade (it probes again, itself, what ended in "error").
    let nextest = read(".config/nextest.toml");
    let e2e = &nextest[nextest.find("[profile.e2e]").unwrap()..];
    assert!(
        e2e.contains("\nretries = 1\n"),
        "the e2e profile retries once"
    );
    let grade = &nextest[nextest.find("filter = \"test(/^live_grade_/)\"").unwrap()..];
    assert!(
        grade[..grade.find("\n\n").unwrap_or(grade.len())].contains("retries = 0"),
        "a live grade is not retried whole"
    );
    // .ci/run and `make e2e` run that very step.
    assert!(read(".ci/run").contains("ci/steps.sh e2e"));
    assert!(read("Makefile").contains("ci/steps.sh e2e"));

    // The grader's exit 3 (broken environment) fails the step; the report still lands.
    let summary = fakes.path("summary.md");
    let mut env = env.clone();
    env.push(("FAKE_CARGO_EXIT", "3".into()));
    env.push(("GITHUB_STEP_SUMMARY", summary.display().to_string()));
    env.push(("GRADE_OUT", fakes.path("out").display().to_string()));
    env.push(("SUBMISSION", "fixtures/submissions/reference".into()));
    let (ok, stdout, stderr) = fakes.run("ci/steps.sh", &["grade"], &env);
    assert!(!ok, "grade exit 3 passed the step");
    assert!(stderr.contains("exited 3"), "{stderr}");
    assert!(stdout.contains("# report"));
    assert_eq!(std::fs::read_to_string(&summary).unwrap(), "# report\n");
    let env_seen = std::fs::read_to_string(fakes.path("cargo-env")).unwrap();
    assert!(env_seen.contains(&format!(
        "KUBECONFIG={}",
        fakes.path("kind-state/kubeconfig").display()
    )));
}

#[test]
fn steps_started_as_another_user_rerun_under_sudo_with_path_and_home() {
    let fakes = Fakes::new();
    // Not root until sudo says so; sudo runs its command with FAKE_ROOT=1.
    fakes.command("id", r#"[ "${FAKE_ROOT:-}" = 1 ] && echo 0 || echo 1000"#);
    fakes.command(
        "sudo",
        r#"[ "$1" = --preserve-env ] || exit 1; shift; FAKE_ROOT=1 exec "$@""#,
    );
    let (ok, _, stderr) = fakes.run("ci/steps.sh", &["no-such-step"], &[]);
    assert!(!ok);
    assert!(stderr.contains("usage: ci/steps.sh"), "{stderr}");
    let sudo = fakes
        .calls()
        .into_iter()
        .find(|c| c.starts_with("sudo"))
        .expect("re-run under sudo");
    assert!(
        sudo.contains(&format!("HOME={}", fakes.path("home").display())),
        "{sudo}"
    );
    assert!(
        sudo.contains(&format!("PATH={}", fakes.path("bin").display())),
        "{sudo}"
    );
    assert!(sudo.ends_with("ci/steps.sh no-such-step"), "{sudo}");
}

#[test]
fn image_archives_are_rebuilt_when_their_build_changes_and_kind_builds_no_kubernetes() {
    require_tool("bash", "to source ci/localcluster/cluster.sh");
    let fakes = Fakes::new();
    let f = |p: &str| fakes.path(p).display().to_string();
    for dir in [
        "bin/coredns-aaaa",
        "bin/coredns-bbbb",
        "target/release",
        "repo/workloads/image",
    ] {
        std::fs::create_dir_all(fakes.path(dir)).unwrap();
    }
    // oci-image and the workloads' image build, faked: each logs what it was asked.
    fakes.command(
        "fake-oci-image",
        r#"out=${all##*--out }; echo built >"$out""#,
    );
    std::fs::copy(
        fakes.path("bin/fake-oci-image"),
        fakes.path("target/release/oci-image"),
    )
    .unwrap();
    fakes.command("fake-workloads", "");
    std::fs::copy(
        fakes.path("bin/fake-workloads"),
        fakes.path("repo/workloads/image/build.sh"),
    )
    .unwrap();
    // The second build directory is *older* than the archive made from the first (another
    // checkout's build, a restored cache): timestamps alone kept the old binary.
    let script = format!(
        r#"set -euo pipefail
source "{cluster}"
repo="{repo}"; cache="{cache}"; export CARGO_TARGET_DIR="{target}"
oci_image="$CARGO_TARGET_DIR/release/oci-image"
touch -d '2020-01-01' "{b}"; touch "{a}/.complete"; touch -d '2020-01-01' "{b}/.complete"
mkdir -p "$cache/images"
image_archive registry.k8s.io/coredns/coredns:v1.14.6 "$cache/images/coredns.oci.tar" "{a}" --file x
image_archive registry.k8s.io/coredns/coredns:v1.14.6 "$cache/images/coredns.oci.tar" "{a}" --file x
image_archive registry.k8s.io/coredns/coredns:v1.14.6 "$cache/images/coredns.oci.tar" "{b}" --file x
# `images kind` asks build.sh for metrics-server and CoreDNS only (no Kubernetes build),
# and for the test scripts' tools: busybox's applet list comes from debian-static's build.
build() {{ echo "build $*" >>"{log}"; for m in "$@"; do echo "{cache}/bin/$m-cccc"; done; }}
mkdir -p "{cache}/bin/debian-static-cccc"
printf 'bin/busybox\nbin/sh\nlinuxrc\nsbin/ifconfig\nusr/bin/wget\n' >"{cache}/bin/debian-static-cccc/busybox.applets"
images kind
"#,
        cluster = repo().join("ci/localcluster/cluster.sh").display(),
        repo = f("repo"),
        cache = f(""),
        target = f("target"),
        a = f("bin/coredns-aaaa"),
        b = f("bin/coredns-bbbb"),
        log = f("calls.log"),
    );
    let out = Command::new("bash").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = fakes.calls();
    let coredns_builds: Vec<&String> = calls
        .iter()
        .filter(|c| c.starts_with("fake-oci-image") && c.contains("coredns"))
        .collect();
    // Built from aaaa, kept, rebuilt from bbbb, then (images kind) rebuilt from cccc.
    assert_eq!(coredns_builds.len(), 3, "{calls:#?}");
    assert!(
        calls.contains(
            &"build metrics-server coredns prometheus prometheus-operator kube-state-metrics prometheus-adapter vpa"
                .to_string()
        ),
        "{calls:#?}"
    );
    assert!(!calls.iter().any(|c| c.contains("build k8s")), "{calls:#?}");
    // The test scripts' images: kubectl alone (not the k8s module), busybox's applets at
    // their usual paths in the runner and all in /bin in the busybox image, no link over
    // bash or busybox itself.
    assert!(
        calls.contains(&"build debian-static hey kubectl".to_string()),
        "{calls:#?}"
    );
    let built = |name: &str| {
        calls
            .iter()
            .find(|c| c.starts_with("fake-oci-image") && c.contains(&format!("--name {name} ")))
            .unwrap_or_else(|| panic!("no archive named {name}: {calls:#?}"))
            .clone()
    };
    let runner = built("localhost/autoscale-conformance/script-runner:0.1.0");
    for needle in [
        "--symlink /bin/sh:busybox ",
        "--symlink /sbin/ifconfig:../bin/busybox ",
        "--symlink /usr/bin/wget:../../bin/busybox ",
        "/debian-static-cccc/bash:/bin/bash:0755",
        "/kubectl-cccc/kubectl:/usr/local/bin/kubectl:0755",
        "/hey-cccc/hey:/usr/local/bin/hey:0755",
        "--user 65532:65532",
        "--entrypoint /bin/bash",
    ] {
        assert!(
            runner.contains(needle),
            "script-runner lacks `{needle}`: {runner}"
        );
    }
    for tag in ["latest", "1.36"] {
        let busybox = built(&format!("docker.io/library/busybox:{tag}"));
        for needle in [
            "--symlink /bin/wget:busybox ",
            "--symlink /bin/ifconfig:busybox ",
            "--arg sh",
        ] {
            assert!(
                busybox.contains(needle),
                "busybox:{tag} lacks `{needle}`: {busybox}"
            );
        }
        assert!(!busybox.contains("--entrypoint"), "{busybox}");
    }
    for image in [runner, built("docker.io/library/busybox:latest")] {
        assert!(
            !image.contains("--symlink /bin/busybox:")
                && !image.contains("--symlink /bin/bash:")
                && !image.contains("linuxrc"),
            "{image}"
        );
    }
    assert!(
        !calls.iter().any(|c| c.contains("pause")),
        "kind does not use a pause archive: {calls:#?}"
    );
}

// ------------------------------------------------------------------ the workflow

#[test]
fn workflow_runs_only_the_ci_steps_with_current_action_majors() {
    let workflow = read(".github/workflows/grade.yml");
    let steps = read("ci/steps.sh");
    let mut runs = Vec::new();
    for line in workflow.lines() {
        if let Some(run) = line.trim().strip_prefix("run:") {
            let run = run.trim();
            // One script per step: no pipes, substitutions or chains that lose a status.
            let step = run.strip_prefix("ci/steps.sh ").unwrap_or_else(|| {
                panic!("workflow step `{run}` is not `ci/steps.sh <step>`: what GitHub runs must be what runs here")
            });
            assert!(!step.contains(['|', '$', ';', '&', '`']), "{run}");
            assert!(
                steps.contains(&format!("\n  {step})")),
                "ci/steps.sh has no step `{step}`"
            );
            runs.push(step.to_string());
        }
        assert!(
            !line.trim_start().starts_with("run: |"),
            "multi-line run block: {line}"
        );
    }
    for step in ["tools", "test", "cluster", "e2e", "grade", "down"] {
        assert!(
            runs.iter().any(|r| r == step),
            "the workflow does not run `{step}`: {runs:?}"
        );
    }
    // The action majors that run on Node 24 (checked against their releases, see ci/README.md).
    let current = [
        ("actions/checkout", 7),
        ("actions/setup-go", 7),
        ("actions/cache", 6),
        ("actions/upload-artifact", 7),
        ("Swatinem/rust-cache", 2),
    ];
    for line in workflow.lines() {
        let Some(uses) = line.trim().trim_start_matches("- ").strip_prefix("uses:") else {
            continue;
        };
        let (action, version) = uses.trim().split_once('@').expect("action@version");
        if action == "dtolnay/rust-toolchain" {
            continue;
        }
        let (_, major) = current
            .iter()
            .find(|(a, _)| *a == action)
            .unwrap_or_else(|| panic!("{action} is not among the actions whose majors are known"));
        assert_eq!(
            version,
            format!("v{major}"),
            "{action}@{version}: current major is v{major}"
        );
    }
}

// ------------------------------------------------------------------ the monitoring stack

/// The monitoring stack's manifests, loaded with the grader's own loader.
fn monitoring_stack() -> harness::submission::Submission {
    let dir = repo().join("ci/addons/monitoring");
    harness::submission::load(&dir, &harness::submission::LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

fn monitoring_object<'a>(
    stack: &'a harness::submission::Submission,
    kind: &str,
    name: &str,
) -> &'a serde_json::Value {
    stack
        .objects
        .iter()
        .find(|o| o.kind == kind && o.name == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in ci/addons/monitoring"))
        .value()
}

#[test]
fn monitoring_stack_manifests_parse_and_run_only_the_pinned_images() {
    let stack = monitoring_stack();
    let errors: Vec<String> = stack
        .findings
        .iter()
        .filter(|f| f.severity == harness::verdict::Severity::Error)
        .map(|f| format!("{}: {}", f.check, f.message))
        .collect();
    assert!(errors.is_empty(), "ci/addons/monitoring: {errors:#?}");
    // Every container of every workload: an image the project builds, never pulled.
    let pinned = [
        "quay.io/prometheus-operator/prometheus-operator:v0.85.0",
        "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0",
        "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0",
    ];
    let mut seen = Vec::new();
    for object in stack.objects.iter().filter(|o| o.kind == "Deployment") {
        let value = object.value();
        assert_eq!(
            value["metadata"]["namespace"], "monitoring",
            "{}",
            object.name
        );
        for container in value["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
        {
            let image = container["image"].as_str().unwrap();
            assert!(
                pinned.contains(&image),
                "{}: unpinned image {image}",
                object.name
            );
            assert_eq!(container["imagePullPolicy"], "IfNotPresent", "{image}");
            assert!(
                container["resources"]["requests"]["cpu"].as_str() == Some("50m"),
                "{image}: a small CPU request (the real node has 2 CPUs)"
            );
            seen.push(image.to_string());
        }
    }
    seen.sort();
    let mut expected: Vec<String> = pinned.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(seen, expected);
    // The operator runs Prometheus v3.16.0 and the reloader of its own release.
    let prometheus = monitoring_object(&stack, "Prometheus", "prometheus");
    assert_eq!(
        prometheus["spec"]["image"],
        "quay.io/prometheus/prometheus:v3.16.0"
    );
    assert_eq!(prometheus["spec"]["version"], "v3.16.0");
    let operator = monitoring_object(&stack, "Deployment", "prometheus-operator");
    assert!(
        operator["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0"),
        "{operator}"
    );
    // The same names are the archives cluster.sh builds (and kind loads).
    let cluster = read("ci/localcluster/cluster.sh");
    for image in pinned.iter().chain(&[
        "quay.io/prometheus/prometheus:v3.16.0",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.85.0",
    ]) {
        assert!(
            cluster.contains(&format!("image_archive {image} ")),
            "cluster.sh builds no archive named {image}"
        );
    }
}

#[test]
fn monitoring_stack_prometheus_selects_everything_and_is_the_charts_service() {
    let stack = monitoring_stack();
    let spec = &monitoring_monitoring_prometheus(&stack)["spec"];
    for selector in [
        "serviceMonitorSelector",
        "serviceMonitorNamespaceSelector",
        "podMonitorSelector",
        "podMonitorNamespaceSelector",
        "ruleSelector",
        "ruleNamespaceSelector",
    ] {
        assert_eq!(
            spec[selector],
            serde_json::json!({}),
            "{selector} must be {{}} (any labels, every namespace)"
        );
    }
    assert_eq!(spec["scrapeInterval"], "15s");
    assert_eq!(spec["evaluationInterval"], "15s");
    assert_eq!(spec["podMetadata"]["labels"]["app"], "prometheus");
    assert!(spec.get("storage").is_none(), "no persistence");
    assert!(spec.get("alerting").is_none(), "no Alertmanager");
    // The chart's Service, selecting the operator's Prometheus pods.
    let service = monitoring_object(&stack, "Service", "prometheus-server");
    assert_eq!(service["metadata"]["namespace"], "monitoring");
    assert_eq!(service["spec"]["ports"][0]["port"], 80);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], 9090);
    assert_eq!(service["spec"]["selector"]["app"], "prometheus");
    // The chart's annotation jobs, as additional scrape configs.
    let secret_ref = &spec["additionalScrapeConfigs"];
    let secret = monitoring_object(&stack, "Secret", secret_ref["name"].as_str().unwrap());
    let jobs = secret["stringData"][secret_ref["key"].as_str().unwrap()]
        .as_str()
        .unwrap();
    for needle in [
        "job_name: kubernetes-pods",
        "job_name: kubernetes-service-endpoints",
        "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
        "__meta_kubernetes_pod_annotation_prometheus_io_port",
        "__meta_kubernetes_pod_annotation_prometheus_io_path",
        "__meta_kubernetes_pod_annotation_prometheus_io_scheme",
        "__meta_kubernetes_service_annotation_prometheus_io_scrape",
        "__meta_kubernetes_pod_label_(.+)",
        "__meta_kubernetes_service_label_(.+)",
        "target_label: namespace",
        "target_label: pod",
        "target_label: node",
        "target_label: service",
    ] {
        assert!(
            jobs.contains(needle),
            "the additional scrape configs lack `{needle}`"
        );
    }
    // Not checked with promtool: Debian's (2.42) is built without Kubernetes SD and
    // rejects every `kubernetes_sd_configs`. The live smoke test sees the jobs run.
}

fn monitoring_monitoring_prometheus(stack: &harness::submission::Submission) -> &serde_json::Value {
    let prometheus = monitoring_object(stack, "Prometheus", "prometheus");
    assert_eq!(prometheus["metadata"]["namespace"], "monitoring");
    prometheus
}

#[test]
fn monitoring_stack_adapter_registers_only_custom_metrics_and_restarts_on_its_annotation() {
    let stack = monitoring_stack();
    let apiservices: Vec<&str> = stack
        .objects
        .iter()
        .filter(|o| o.kind == "APIService")
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(apiservices, ["v1beta1.custom.metrics.k8s.io"]);
    let adapter = monitoring_object(&stack, "Deployment", "prometheus-adapter");
    let template = &adapter["spec"]["template"];
    assert!(
        template["metadata"]["annotations"]["autoscale-conformance/config-hash"].is_string(),
        "the grader restarts the adapter by patching this annotation"
    );
    let args: Vec<&str> = template["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for arg in [
        "--prometheus-url=http://prometheus-server.monitoring.svc:80",
        "--metrics-relist-interval=30s",
        "--config=/etc/adapter/config.yaml",
    ] {
        assert!(args.contains(&arg), "adapter args lack {arg}: {args:?}");
    }
    // Its rules: ConfigMap prometheus-adapter, key config.yaml, mounted where --config reads.
    let volumes = template["spec"]["volumes"].as_array().unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v["configMap"]["name"] == "prometheus-adapter"),
        "{volumes:?}"
    );
    let config = monitoring_object(&stack, "ConfigMap", "prometheus-adapter");
    assert!(config["data"]["config.yaml"].is_string());
    // The grader's loader reads the default rules, custom ones only.
    assert!(!stack.adapter_rules.is_empty(), "no adapter rules found");
    assert!(stack.adapter_rules.iter().all(|r| !r.external));
    // The HPA controller may read custom metrics, as the chart grants it.
    let binding = monitoring_object(
        &stack,
        "ClusterRoleBinding",
        "prometheus-adapter-hpa-controller",
    );
    assert_eq!(binding["subjects"][0]["name"], "horizontal-pod-autoscaler");
    assert_eq!(binding["subjects"][0]["namespace"], "kube-system");
}

// ------------------------------------------------------------------ KEDA

/// KEDA's manifests (ci/addons/keda/): loaded with the grader's own loader, only the
/// three images built here under upstream's names, never pulled, small requests; the
/// operator rotates its own certificates (nothing committed) and the webhook and the
/// metrics API point at KEDA's Services.
#[test]
fn keda_manifests_parse_and_run_only_the_pinned_images() {
    let dir = repo().join("ci/addons/keda");
    let keda = harness::submission::load(&dir, &harness::submission::LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()));
    let errors: Vec<String> = keda
        .findings
        .iter()
        .filter(|f| f.severity == harness::verdict::Severity::Error)
        .map(|f| format!("{}: {}", f.check, f.message))
        .collect();
    assert!(errors.is_empty(), "ci/addons/keda: {errors:#?}");
    let object = |kind: &str, name: &str| {
        keda.objects
            .iter()
            .find(|o| o.kind == kind && o.name == name)
            .unwrap_or_else(|| panic!("no {kind} {name} in ci/addons/keda"))
            .value()
    };
    let mut images = Vec::new();
    for deployment in ["keda-operator", "keda-metrics-apiserver", "keda-admission"] {
        let value = object("Deployment", deployment);
        assert_eq!(value["metadata"]["namespace"], "keda", "{deployment}");
        let container = &value["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["imagePullPolicy"], "IfNotPresent", "{deployment}");
        assert_eq!(
            container["resources"]["requests"]["cpu"], "5m",
            "{deployment}: a small CPU request (the real node has 2 CPUs)"
        );
        images.push(container["image"].as_str().unwrap().to_string());
    }
    assert_eq!(
        images,
        [
            "ghcr.io/kedacore/keda:2.21.0",
            "ghcr.io/kedacore/keda-metrics-apiserver:2.21.0",
            "ghcr.io/kedacore/keda-admission-webhooks:2.21.0",
        ]
    );
    // Every image is one cluster.sh builds under that name.
    let cluster = read("ci/localcluster/cluster.sh");
    for image in &images {
        assert!(
            cluster.contains(&format!("image_archive {image} ")),
            "{image}"
        );
    }
    let operator = object("Deployment", "keda-operator");
    assert!(
        operator["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--enable-cert-rotation=true"),
        "{operator}"
    );
    assert_eq!(
        object("APIService", "v1beta1.external.metrics.k8s.io")["spec"]["service"]["name"],
        "keda-metrics-apiserver"
    );
    assert!(
        !read("ci/addons/apply.sh").contains("kedaorg-certs.yaml"),
        "certificates are generated in the cluster, never committed"
    );
}
