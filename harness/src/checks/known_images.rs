//! What a few well-known public images do when nothing overrides them: the port
//! their server listens on ([`SERVERS`]) and whether they carry a shell at all
//! ([`SHELL_LESS`]). Small on purpose: the images of the exercise and of the
//! submissions seen so far. A check that uses it says nothing about an image it
//! does not list, nor about a container that may change what the image does.

use k8s_openapi::api::core::v1::Container;

/// An image whose server listens on a known port unless the container changes it.
pub struct Server {
    /// Repositories as [`repository`] writes them (no `docker.io/`, no `library/`).
    pub repositories: &'static [&'static str],
    pub port: u16,
    /// The executables it runs: a `command` naming another replaces the server.
    pub binaries: &'static [&'static str],
    /// Flags that set its listen address (`-listen=:8080`, `--port 6380`). Empty:
    /// it takes its port from its configuration, so any argument may change it.
    pub port_flags: &'static [&'static str],
    /// Directories whose mounted files replace its configuration, port included.
    pub config_dirs: &'static [&'static str],
    /// How to make it listen on another port, for hints.
    pub change_port: &'static str,
}

/// Where each listens by default: the image's own configuration or flag default
/// (nginx's and httpd's shipped config, http-echo's `-listen` default, redis's
/// `port`, the exporter's `--web.listen-address`).
pub const SERVERS: &[Server] = &[
    Server {
        repositories: &["nginx"],
        port: 80,
        binaries: &["nginx"],
        port_flags: &[],
        config_dirs: &["/etc/nginx"],
        change_port: "mount a server block with `listen <port>;` over /etc/nginx/conf.d/default.conf",
    },
    Server {
        repositories: &["nginxinc/nginx-unprivileged"],
        port: 8080,
        binaries: &["nginx"],
        port_flags: &[],
        config_dirs: &["/etc/nginx"],
        change_port: "mount a server block with `listen <port>;` over /etc/nginx/conf.d/default.conf",
    },
    Server {
        repositories: &["httpd"],
        port: 80,
        binaries: &["httpd", "httpd-foreground"],
        port_flags: &[],
        config_dirs: &["/usr/local/apache2/conf"],
        change_port: "mount an httpd.conf with `Listen <port>` over /usr/local/apache2/conf/httpd.conf",
    },
    Server {
        repositories: &["hashicorp/http-echo"],
        port: 5678,
        binaries: &["http-echo"],
        port_flags: &["listen"],
        config_dirs: &[],
        change_port: "pass `-listen=:<port>` in args",
    },
    Server {
        repositories: &["redis"],
        port: 6379,
        binaries: &["redis-server", "docker-entrypoint.sh"],
        port_flags: &["port"],
        config_dirs: &[],
        change_port: "pass `--port <port>` in args",
    },
    Server {
        repositories: &["nginx/nginx-prometheus-exporter"],
        port: 9113,
        binaries: &["nginx-prometheus-exporter"],
        port_flags: &["web.listen-address"],
        config_dirs: &[],
        change_port: "pass `--web.listen-address=:<port>` in args",
    },
];

/// Images with no shell (built FROM scratch or on distroless: their own binary and
/// little else), as repositories or repository prefixes ending in `/`, with what
/// they hold. Tags with `debug` (distroless's busybox variants) or `alpine` have a
/// shell and are not listed.
pub const SHELL_LESS: &[(&str, &str)] = &[
    (
        "hashicorp/http-echo",
        "it is built FROM scratch up to 0.2.x and on distroless static since 1.0, and holds only /http-echo",
    ),
    (
        "gcr.io/distroless/",
        "distroless images hold the application's runtime and nothing else",
    ),
    (
        "registry.k8s.io/pause",
        "it is built FROM scratch and holds only /pause",
    ),
    (
        "k8s.gcr.io/pause",
        "it is built FROM scratch and holds only /pause",
    ),
];

/// An image reference's repository, lower-case, without Docker Hub's registry and
/// `library/` prefixes, tag or digest: `docker.io/library/nginx:1.27` → `nginx`.
pub fn repository(image: &str) -> String {
    let name = image.trim().split('@').next().unwrap_or_default();
    let name = match name.rfind(':') {
        Some(colon) if !name[colon..].contains('/') => &name[..colon],
        _ => name,
    };
    let name = name.to_lowercase();
    let name = ["docker.io/", "index.docker.io/", "registry-1.docker.io/"]
        .iter()
        .find_map(|registry| name.strip_prefix(registry))
        .unwrap_or(&name);
    name.strip_prefix("library/").unwrap_or(name).to_string()
}

/// An image reference's tag, if it has one.
fn tag(image: &str) -> Option<&str> {
    let name = image.trim().split('@').next().unwrap_or_default();
    let colon = name.rfind(':')?;
    (!name[colon..].contains('/')).then(|| &name[colon + 1..])
}

/// The server `image` runs, if the table knows it.
pub fn server(image: &str) -> Option<&'static Server> {
    let repository = repository(image);
    SERVERS
        .iter()
        .find(|s| s.repositories.contains(&repository.as_str()))
}

/// What `image` holds instead of a shell, if the table knows it has none.
pub fn without_shell(image: &str) -> Option<&'static str> {
    let repository = repository(image);
    let tag = tag(image).unwrap_or_default().to_lowercase();
    if tag.contains("debug") || tag.contains("alpine") {
        return None;
    }
    SHELL_LESS
        .iter()
        .find(|(listed, _)| {
            repository == *listed || (listed.ends_with('/') && repository.starts_with(listed))
        })
        .map(|(_, holds)| *holds)
}

/// Where a container's server listens, and why the grader knows.
pub struct Listening {
    pub port: u16,
    pub server: &'static Server,
    /// The argument that sets it, when one does (else it is the image's default).
    pub set_by: Option<String>,
}

/// The port `container`'s server listens on: its image's default, or what its port
/// flag says. `None` when the table does not know the image, or when anything that
/// could change the port is there: a `command` that runs something else, an
/// argument it cannot read (a config file, a server configured by file), an
/// environment variable about a port or listen address, `envFrom`, or a mount
/// over the server's configuration.
pub fn listening_port(container: &Container) -> Option<Listening> {
    let server = server(container.image.as_deref()?)?;
    if container.env_from.as_ref().is_some_and(|e| !e.is_empty()) {
        return None;
    }
    let env_may_set_port = container.env.iter().flatten().any(|var| {
        let name = var.name.to_uppercase();
        name.contains("PORT") || name.contains("LISTEN")
    });
    if env_may_set_port {
        return None;
    }
    let mounts_config = container.volume_mounts.iter().flatten().any(|mount| {
        server
            .config_dirs
            .iter()
            .any(|dir| mount.mount_path.trim_end_matches('/').starts_with(dir))
    });
    if mounts_config {
        return None;
    }
    let mut argv: Vec<&str> = Vec::new();
    if let Some(command) = container.command.as_ref().filter(|c| !c.is_empty()) {
        if !runs_own_binary(server, &command[0]) {
            return None;
        }
        argv.extend(command[1..].iter().map(String::as_str));
    }
    argv.extend(container.args.iter().flatten().map(String::as_str));
    if argv.first().is_some_and(|a| runs_own_binary(server, a)) {
        argv.remove(0);
    }
    if server.port_flags.is_empty() {
        return argv.is_empty().then_some(Listening {
            port: server.port,
            server,
            set_by: None,
        });
    }
    let mut set_by = None;
    let mut port = server.port;
    let mut args = argv.iter().peekable();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            if names_a_file(arg) {
                return None;
            }
            continue;
        };
        let (name, inline): (&str, Option<&str>) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        if !server.port_flags.contains(&name) {
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => args.next().copied()?,
        };
        port = port_of_address(value)?;
        set_by = Some(match inline {
            Some(_) => (*arg).to_string(),
            None => format!("{arg} {value}"),
        });
    }
    Some(Listening {
        port,
        server,
        set_by,
    })
}

fn runs_own_binary(server: &Server, program: &str) -> bool {
    let name = program.rsplit('/').next().unwrap_or(program);
    server.binaries.contains(&name)
}

/// An argument that names a file (a configuration that may set the port).
fn names_a_file(arg: &str) -> bool {
    arg.contains('/')
        || [".conf", ".cfg", ".ini", ".yaml", ".yml", ".json", ".toml"]
            .iter()
            .any(|ext| arg.ends_with(ext))
}

/// The port of a listen address (`:8080`, `0.0.0.0:8080`, `8080`); `None` for
/// anything else (a variable such as `$(PORT)`).
fn port_of_address(address: &str) -> Option<u16> {
    let port = address.rsplit(':').next().unwrap_or(address);
    port.parse().ok().filter(|p| *p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn container(json: &str) -> Container {
        serde_json::from_str(json).unwrap()
    }

    #[rstest]
    #[case("nginx:alpine", "nginx")]
    #[case("docker.io/library/nginx:1.27-alpine", "nginx")]
    #[case("NGINX", "nginx")]
    #[case("hashicorp/http-echo@sha256:abc", "hashicorp/http-echo")]
    #[case("localhost:5000/team/app:1", "localhost:5000/team/app")]
    #[case(
        "gcr.io/distroless/static-debian12:nonroot",
        "gcr.io/distroless/static-debian12"
    )]
    fn repositories_drop_docker_hub_prefixes_tags_and_digests(
        #[case] image: &str,
        #[case] expected: &str,
    ) {
        assert_eq!(repository(image), expected);
    }

    #[rstest]
    #[case(r#"{"name": "c", "image": "nginx:alpine"}"#, Some(80))]
    #[case(
        r#"{"name": "c", "image": "nginxinc/nginx-unprivileged:1.27"}"#,
        Some(8080)
    )]
    #[case(r#"{"name": "c", "image": "httpd:2.4"}"#, Some(80))]
    #[case(
        r#"{"name": "c", "image": "hashicorp/http-echo:1.0", "args": ["-text=hi"]}"#,
        Some(5678)
    )]
    #[case(
        r#"{"name": "c", "image": "hashicorp/http-echo:1.0", "args": ["-listen=:8080", "-text", "hello world"]}"#,
        Some(8080)
    )]
    #[case(
        r#"{"name": "c", "image": "hashicorp/http-echo:1.0", "args": ["--listen", "0.0.0.0:9000"]}"#,
        Some(9000)
    )]
    #[case(
        r#"{"name": "c", "image": "redis:7-alpine", "args": ["redis-server", "--port", "6380"]}"#,
        Some(6380)
    )]
    #[case(
        r#"{"name": "c", "image": "redis:7-alpine", "args": ["--appendonly", "yes"]}"#,
        Some(6379)
    )]
    #[case(r#"{"name": "c", "image": "busybox:1.36"}"#, None)]
    #[case(r#"{"name": "c", "image": "python:3.11-slim"}"#, None)]
    #[case(r#"{"name": "c"}"#, None)]
    #[case(
        r#"{"name": "c", "image": "nginx", "args": ["nginx", "-g", "daemon off;"]}"#,
        None
    )]
    #[case(
        r#"{"name": "c", "image": "nginx", "command": ["/bin/sh", "-c", "x"]}"#,
        None
    )]
    #[case(
        r#"{"name": "c", "image": "nginx", "env": [{"name": "NGINX_PORT", "value": "8080"}]}"#,
        None
    )]
    #[case(
        r#"{"name": "c", "image": "nginx", "envFrom": [{"configMapRef": {"name": "x"}}]}"#,
        None
    )]
    #[case(
        r#"{"name": "c", "image": "nginx", "volumeMounts": [{"name": "conf", "mountPath": "/etc/nginx/conf.d"}]}"#,
        None
    )]
    #[case(
        r#"{"name": "c", "image": "hashicorp/http-echo", "args": ["-listen=:$(PORT)"]}"#,
        None
    )]
    #[case(
        r#"{"name": "c", "image": "redis", "args": ["/usr/local/etc/redis/redis.conf"]}"#,
        None
    )]
    #[case(
        r#"{"name": "c", "image": "hashicorp/http-echo", "command": ["/app/other"]}"#,
        None
    )]
    fn the_listening_port_is_known_only_when_nothing_may_change_it(
        #[case] json: &str,
        #[case] port: Option<u16>,
    ) {
        assert_eq!(
            listening_port(&container(json)).map(|l| l.port),
            port,
            "{json}"
        );
    }

    #[rstest]
    #[case("hashicorp/http-echo:latest", true)]
    #[case("hashicorp/http-echo:1.0", true)]
    #[case("gcr.io/distroless/static-debian12:nonroot", true)]
    #[case("gcr.io/distroless/base:debug", false)]
    #[case("registry.k8s.io/pause:3.10", true)]
    #[case("busybox:1.36", false)]
    #[case("nginx:alpine", false)]
    #[case("python:3.11-slim", false)]
    fn shell_less_images_are_scratch_and_distroless_builds(
        #[case] image: &str,
        #[case] shell_less: bool,
    ) {
        assert_eq!(without_shell(image).is_some(), shell_less, "{image}");
    }
}
