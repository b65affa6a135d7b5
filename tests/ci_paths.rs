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
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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
