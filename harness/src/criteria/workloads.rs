//! Criterion `workloads-run`: static checks only. The workloads the autoscalers
//! scale must start and serve where their Services and scrapes point; the
//! exercise's own manifests fail both ways (nginx declared on 8080 while it
//! listens on 80, a postStart hook running /bin/sh in the shell-less
//! hashicorp/http-echo). Judged from the small table of well-known images in
//! `checks::known_images`: a container whose image it does not list, or whose
//! command, args, env or mounts may change what the image does, is not judged.

use super::{CriterionId, CriterionInfo};
use crate::checks::known_images::{self, Listening};
use crate::checks::{CheckInfo, Collector, Input, service_selector};
use crate::submission::{Object, PodTemplate, Typed, selector};
use k8s_openapi::api::core::v1::{Container, ContainerPort, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub const ID: CriterionId = CriterionId("workloads-run");

pub const ABOUT: &[CriterionInfo] = &[CriterionInfo {
    id: ID,
    title: "The workloads start and serve on the ports their Services and scrapes use",
    rubric_line: "hpa-cpu-configuration",
    cncf_ai_conformance: None,
    has_live_part: false,
}];

pub const PORT_UNSERVED: CheckInfo = CheckInfo::error(
    "workload.port-unserved",
    ID,
    "containerPort, a Service's targetPort and prometheus.io/port name a port the pod's image listens on",
    "use the port the image listens on in containerPort, the Service's targetPort and prometheus.io/port, or configure the image to listen on the declared port",
)
.always_applicable();

pub const POSTSTART_NO_SHELL: CheckInfo = CheckInfo::error(
    "workload.poststart-no-shell",
    ID,
    "no lifecycle hook or exec probe runs a shell in an image that has none",
    "remove the hook or probe, or run its command in a container whose image has a shell",
)
.always_applicable();

pub const CATALOGUE: &[CheckInfo] = &[PORT_UNSERVED, POSTSTART_NO_SHELL];

pub struct Workloads;

criterion_checks_only!(Workloads);

pub fn check(input: &Input<'_>, out: &mut Collector) {
    for workload in &input.index.workloads {
        let Some(template) = workload.pod_template() else {
            continue;
        };
        if let Some(listeners) = pod_listeners(&template) {
            declared_ports_served(workload, &template, &listeners, out);
            scraped_port_served(workload, &template, &listeners, out);
        }
        execs_have_a_shell(workload, &template, out);
    }
    for object in &input.submission.objects {
        if let Typed::Service(service) = &object.typed {
            service_reaches_a_listener(input, object, service, out);
        }
    }
}

/// One container's server and where it listens.
struct Listener<'a> {
    container: &'a Container,
    listening: Listening,
}

/// Where the servers of a pod listen: its containers and sidecars (init containers
/// that keep running). `None` when any of them may listen where the table cannot
/// tell, since that one might serve any port.
fn pod_listeners<'a>(template: &PodTemplate<'a>) -> Option<Vec<Listener<'a>>> {
    let sidecars = template
        .spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    template
        .spec
        .containers
        .iter()
        .chain(sidecars)
        .map(|container| {
            known_images::listening_port(container).map(|listening| Listener {
                container,
                listening,
            })
        })
        .collect()
}

fn listens_on(listeners: &[Listener<'_>], port: i32) -> bool {
    listeners
        .iter()
        .any(|l| i32::from(l.listening.port) == port)
}

/// "container api runs nginx:alpine, which listens on 80 (...)", for each listener.
fn describe_listeners(listeners: &[Listener<'_>]) -> String {
    let described: Vec<String> = listeners
        .iter()
        .map(|l| {
            let why = match &l.listening.set_by {
                Some(argument) => format!("as its argument `{argument}` says"),
                None => "by default, and nothing in its command, args, env or mounts changes that"
                    .to_string(),
            };
            format!(
                "container {} runs {}, which listens on {} {why}",
                l.container.name,
                l.container.image.as_deref().unwrap_or_default(),
                l.listening.port
            )
        })
        .collect();
    described.join("; ")
}

/// How to fix a reference to `port`, which nothing in the pod serves.
fn fix_for(listeners: &[Listener<'_>], port: i32) -> String {
    match listeners {
        [only] => format!(
            "use {} (where {} listens) as containerPort, the Service's targetPort and prometheus.io/port; or make it listen on {port}: {}",
            only.listening.port,
            only.container.image.as_deref().unwrap_or_default(),
            only.listening
                .server
                .change_port
                .replace("<port>", &port.to_string())
        ),
        _ => {
            let ports: Vec<String> = listeners
                .iter()
                .map(|l| l.listening.port.to_string())
                .collect();
            format!(
                "point containerPort, the Service's targetPort and prometheus.io/port at a port the pod listens on ({})",
                ports.join(", ")
            )
        }
    }
}

/// TCP (the default), the protocol the servers in the table speak.
fn is_tcp(protocol: Option<&str>) -> bool {
    protocol.is_none_or(|p| p == "TCP")
}

/// Each declared containerPort is one a server of the pod listens on. Declaring it is
/// documentation, but Services, probes and scrapes that name the port by name or
/// number follow it.
fn declared_ports_served(
    workload: &Object,
    template: &PodTemplate<'_>,
    listeners: &[Listener<'_>],
    out: &mut Collector,
) {
    for (i, container) in template.spec.containers.iter().enumerate() {
        for (j, declared) in container.ports.iter().flatten().enumerate() {
            let ContainerPort {
                container_port,
                protocol,
                ..
            } = declared;
            if !is_tcp(protocol.as_deref()) || listens_on(listeners, *container_port) {
                continue;
            }
            out.fire_with_hint(
                &PORT_UNSERVED,
                workload.locate(&format!(
                    "{}/containers/{i}/ports/{j}/containerPort",
                    template.pointer
                )),
                format!(
                    "{} declares containerPort {container_port} on container {}, but nothing in its pods listens on {container_port}: {}",
                    workload.describe(),
                    container.name,
                    describe_listeners(listeners)
                ),
                fix_for(listeners, *container_port),
            );
        }
    }
}

/// The pod template's `prometheus.io/port` names a port a server of the pod listens
/// on: Prometheus's annotation-driven pod job scrapes exactly that port.
fn scraped_port_served(
    workload: &Object,
    template: &PodTemplate<'_>,
    listeners: &[Listener<'_>],
    out: &mut Collector,
) {
    let metadata = format!(
        "{}/metadata",
        template
            .pointer
            .strip_suffix("/spec")
            .unwrap_or(template.pointer)
    );
    let Some(port) = scrape_port(workload.value(), &metadata) else {
        return;
    };
    if listens_on(listeners, port) {
        return;
    }
    out.fire_with_hint(
        &PORT_UNSERVED,
        workload.locate(&format!("{metadata}/annotations/prometheus.io~1port")),
        format!(
            "{} asks Prometheus to scrape port {port} (prometheus.io/port), but nothing in its pods listens on {port}: {}",
            workload.describe(),
            describe_listeners(listeners)
        ),
        fix_for(listeners, port),
    );
}

/// The numeric `prometheus.io/port` annotation of the metadata at `pointer`.
fn scrape_port(object: &Value, pointer: &str) -> Option<i32> {
    let value = object.pointer(&format!("{pointer}/annotations/prometheus.io~1port"))?;
    match value {
        Value::String(text) => text.trim().parse().ok(),
        Value::Number(number) => number.as_i64().and_then(|n| i32::try_from(n).ok()),
        _ => None,
    }
}

/// Each numeric targetPort of a Service (its port when unset), and its own
/// `prometheus.io/port`, is a port a server of the pods it selects listens on.
/// Named targetPorts follow the containerPort of that name, judged above.
fn service_reaches_a_listener(
    input: &Input<'_>,
    object: &Object,
    service: &Service,
    out: &mut Collector,
) {
    let Some(labels) = service_selector(service) else {
        return;
    };
    let wanted = selector::of_labels(labels);
    let selected: Vec<&Object> = input
        .submission
        .workloads_selected_by(object.namespace.as_deref(), &wanted)
        .collect();
    let judged: Option<Vec<(&Object, Vec<Listener<'_>>)>> = selected
        .iter()
        .map(|w| Some((*w, pod_listeners(&w.pod_template()?)?)))
        .collect();
    let Some(judged) = judged.filter(|j| !j.is_empty()) else {
        return;
    };
    let served = |port: i32| judged.iter().any(|(_, l)| listens_on(l, port));
    let behind = || {
        judged
            .iter()
            .map(|(w, l)| format!("in {}, {}", w.describe(), describe_listeners(l)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let fix = |port: i32| fix_for(&judged[0].1, port);
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    for (k, service_port) in ports.into_iter().flatten().enumerate() {
        let target = match &service_port.target_port {
            None => service_port.port,
            Some(IntOrString::Int(number)) => *number,
            Some(IntOrString::String(_)) => continue,
        };
        if !is_tcp(service_port.protocol.as_deref()) || served(target) {
            continue;
        }
        out.fire_with_hint(
            &PORT_UNSERVED,
            object.locate(&format!("/spec/ports/{k}/targetPort")),
            format!(
                "{} sends its port {} to targetPort {target}, where nothing listens in the pods it selects: {}",
                object.describe(),
                service_port.port,
                behind()
            ),
            fix(target),
        );
    }
    if let Some(port) = scrape_port(object.value(), "/metadata")
        && !served(port)
    {
        out.fire_with_hint(
            &PORT_UNSERVED,
            object.locate("/metadata/annotations/prometheus.io~1port"),
            format!(
                "{} asks Prometheus to scrape its pods on port {port} (prometheus.io/port), but nothing there listens on {port}: {}",
                object.describe(),
                behind()
            ),
            fix(port),
        );
    }
}

/// Programs a shell-less image lacks that hooks and probes run commands through:
/// the shells, and `env` and `busybox`, which start one.
const SHELL_PROGRAMS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh", "env", "busybox"];

/// Where a container runs commands with `exec`, and what happens when that fails.
const EXEC_HANDLERS: &[(&str, &str, &str)] = &[
    (
        "lifecycle/postStart",
        "postStart hook",
        "the hook fails (FailedPostStartHook) and the kubelet kills the container: it restarts into CrashLoopBackOff and its pods never become Ready",
    ),
    (
        "lifecycle/preStop",
        "preStop hook",
        "the hook fails (FailedPreStopHook) at every termination, so the container stops without what the hook was meant to do",
    ),
    (
        "livenessProbe",
        "liveness probe",
        "the probe fails, so the kubelet restarts the container again and again",
    ),
    (
        "readinessProbe",
        "readiness probe",
        "the probe fails, so the pods never become Ready and no Service sends them traffic",
    ),
    (
        "startupProbe",
        "startup probe",
        "the probe fails, so the kubelet kills the container before it ever counts as started",
    ),
];

/// Every exec hook and probe of a container whose image has no shell runs something
/// other than a shell: the kubelet runs the command inside the container, where only
/// the image's own binary exists.
fn execs_have_a_shell(workload: &Object, template: &PodTemplate<'_>, out: &mut Collector) {
    let lists = [
        ("containers", template.spec.containers.as_slice()),
        (
            "initContainers",
            template.spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (list, containers) in lists {
        for (i, container) in containers.iter().enumerate() {
            let image = container.image.as_deref().unwrap_or_default();
            let Some(holds) = known_images::without_shell(image) else {
                continue;
            };
            let container_pointer = format!("{}/{list}/{i}", template.pointer);
            let value = workload.value();
            for (handler, what, consequence) in EXEC_HANDLERS {
                let pointer = format!("{container_pointer}/{handler}/exec/command");
                let Some(command) = value.pointer(&pointer).and_then(Value::as_array) else {
                    continue;
                };
                let Some(program) = command.first().and_then(Value::as_str) else {
                    continue;
                };
                let name = program.rsplit('/').next().unwrap_or(program);
                if !SHELL_PROGRAMS.contains(&name) {
                    continue;
                }
                out.fire_with_hint(
                    &POSTSTART_NO_SHELL,
                    workload.locate(&format!("{pointer}/0")),
                    format!(
                        "{}: container {} runs {image}, which has no shell ({holds}); its {what} execs `{program}`, so {consequence}",
                        workload.describe(),
                        container.name
                    ),
                    format!(
                        "remove the {what}, or run its command in a container whose image has a shell (e.g. a busybox:1.36 sidecar); an image variant with a shell (distroless `:debug`) works too"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Tools;
    use crate::checks::test_support::submission_of;
    use rstest::rstest;

    /// A Deployment `web` (labels app=web, pod `annotations` in flow style) with one
    /// container `c` of `image` and the `extra` container fields (indented for it).
    fn deployment(image: &str, extra: &str, annotations: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: ml}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata:\n      labels: {{app: web}}\n      annotations: {{{annotations}}}\n    spec:\n      containers:\n      - name: c\n        image: {image}\n{extra}"
        )
    }

    fn service(target_port: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: Service\nmetadata: {{name: web, namespace: ml}}\nspec:\n  selector: {{app: web}}\n  ports:\n  - port: 80\n{target_port}"
        )
    }

    fn port_findings(text: &str) -> Vec<String> {
        let submission = submission_of("web.yaml", text);
        let mut out = Collector::default();
        check(&Input::new(&submission, &Tools::none()), &mut out);
        out.findings
            .iter()
            .filter(|f| f.check == PORT_UNSERVED.id)
            .map(|f| format!("{}: {}", f.location, f.message))
            .collect()
    }

    #[test]
    fn the_exercise_nginx_on_8080_is_found_at_each_place_that_says_8080() {
        let text = deployment(
            "nginx:alpine",
            "        ports:\n        - containerPort: 8080\n          name: metrics\n",
            "prometheus.io/scrape: \"true\", prometheus.io/port: \"8080\"",
        ) + &service("    targetPort: 8080\n    name: http\n");
        let found = port_findings(&text);
        assert_eq!(found.len(), 3, "{found:?}");
        for (at, says) in [
            (
                "web.yaml:9:",
                "asks Prometheus to scrape port 8080 (prometheus.io/port)",
            ),
            (
                "web.yaml:15:",
                "declares containerPort 8080 on container c, but nothing in its pods listens on 8080: container c runs nginx:alpine, which listens on 80 by default",
            ),
            ("web.yaml:25:", "sends its port 80 to targetPort 8080"),
        ] {
            assert!(
                found.iter().any(|f| f.starts_with(at) && f.contains(says)),
                "{at} {says}: {found:?}"
            );
        }
    }

    #[test]
    fn the_hint_says_how_to_make_the_image_listen_on_the_declared_port() {
        let submission = submission_of(
            "web.yaml",
            &deployment(
                "hashicorp/http-echo:1.0",
                "        args: [\"-text=hi\"]\n        ports: [{containerPort: 8080}]\n",
                "",
            ),
        );
        let mut out = Collector::default();
        check(&Input::new(&submission, &Tools::none()), &mut out);
        assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
        assert!(
            out.findings[0].hint.contains("use 5678")
                && out.findings[0].hint.contains("`-listen=:8080`"),
            "{}",
            out.findings[0].hint
        );
    }

    #[rstest]
    #[case::nginx_on_80(
        "nginx:alpine",
        "        ports: [{containerPort: 80}]\n",
        "prometheus.io/port: \"80\"",
        "    targetPort: 80\n"
    )]
    #[case::target_port_defaults_to_port("nginx:1.27", "", "", "")]
    #[case::named_target_port(
        "nginx:alpine",
        "        ports: [{containerPort: 80, name: http}]\n",
        "",
        "    targetPort: http\n"
    )]
    #[case::echo_default(
        "hashicorp/http-echo:1.0",
        "        args: [\"-text=hi\"]\n        ports: [{containerPort: 5678}]\n",
        "",
        "    targetPort: 5678\n"
    )]
    #[case::echo_told_to_listen_on_8080(
        "hashicorp/http-echo:1.0",
        "        args: [\"-listen=:8080\", \"-text=hi\"]\n        ports: [{containerPort: 8080}]\n",
        "prometheus.io/port: \"8080\"",
        "    targetPort: 8080\n"
    )]
    #[case::nginx_configured_by_a_mounted_file(
        "nginx:alpine",
        "        ports: [{containerPort: 8080}]\n        volumeMounts: [{name: conf, mountPath: /etc/nginx/conf.d}]\n",
        "prometheus.io/port: \"8080\"",
        "    targetPort: 8080\n"
    )]
    #[case::nginx_with_a_port_variable(
        "nginx:alpine",
        "        env: [{name: NGINX_PORT, value: \"8080\"}]\n        ports: [{containerPort: 8080}]\n",
        "",
        "    targetPort: 8080\n"
    )]
    #[case::an_image_the_table_does_not_know(
        "ghcr.io/team/api:1.0",
        "        ports: [{containerPort: 8080}]\n",
        "prometheus.io/port: \"8080\"",
        "    targetPort: 8080\n"
    )]
    #[case::udp_is_not_judged(
        "nginx:alpine",
        "        ports: [{containerPort: 8125, protocol: UDP}]\n",
        "",
        "    targetPort: 80\n"
    )]
    fn ports_the_image_serves_or_may_serve_are_fine(
        #[case] image: &str,
        #[case] extra: &str,
        #[case] annotations: &str,
        #[case] target_port: &str,
    ) {
        let text = deployment(image, extra, annotations) + &service(target_port);
        assert_eq!(port_findings(&text), Vec::<String>::new());
    }

    #[test]
    fn a_sidecar_the_table_does_not_know_may_serve_the_service() {
        let text = deployment(
            "nginx:alpine",
            "      - name: exporter\n        image: ghcr.io/team/exporter:1\n",
            "",
        ) + &service("    targetPort: 9100\n");
        assert_eq!(port_findings(&text), Vec::<String>::new());
    }
    /// The shell findings of a Deployment whose container `c` runs `image` with the
    /// container fields `extra`.
    fn shell_findings(image: &str, extra: &str) -> Vec<String> {
        let submission = submission_of("web.yaml", &deployment(image, extra, ""));
        let mut out = Collector::default();
        check(&Input::new(&submission, &Tools::none()), &mut out);
        out.findings
            .iter()
            .filter(|f| f.check == POSTSTART_NO_SHELL.id)
            .map(|f| format!("{}: {}", f.location, f.message))
            .collect()
    }

    const POST_START_SHELL: &str = "        lifecycle:\n          postStart:\n            exec:\n              command:\n              - /bin/sh\n              - -c\n              - dd if=/dev/zero of=/dev/null\n";

    #[test]
    fn the_exercise_post_start_shell_in_http_echo_is_found_at_the_shell() {
        let found = shell_findings("hashicorp/http-echo:latest", POST_START_SHELL);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("web.yaml:18:"), "{found:?}");
        assert!(
            found[0].contains("runs hashicorp/http-echo:latest, which has no shell")
                && found[0].contains("postStart hook execs `/bin/sh`, so the hook fails")
                && found[0].contains("FailedPostStartHook"),
            "{found:?}"
        );
    }

    #[rstest]
    #[case::liveness_through_bash(
        "gcr.io/distroless/static-debian12:nonroot",
        "        livenessProbe:\n          exec: {command: [bash, -c, \"test -f /tmp/ok\"]}\n",
        "liveness probe"
    )]
    #[case::pre_stop_through_env(
        "registry.k8s.io/pause:3.10",
        "        lifecycle:\n          preStop:\n            exec: {command: [/usr/bin/env, sh, -c, sleep 5]}\n",
        "preStop hook"
    )]
    fn any_exec_through_a_shell_in_a_shell_less_image_is_found(
        #[case] image: &str,
        #[case] extra: &str,
        #[case] what: &str,
    ) {
        let found = shell_findings(image, extra);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains(what), "{found:?}");
    }

    #[rstest]
    #[case::image_with_a_shell("busybox:1.36", POST_START_SHELL)]
    #[case::distroless_debug("gcr.io/distroless/base:debug", POST_START_SHELL)]
    #[case::an_image_the_table_does_not_know("ghcr.io/team/api:1.0", POST_START_SHELL)]
    #[case::the_images_own_binary(
        "hashicorp/http-echo:1.0",
        "        livenessProbe:\n          exec: {command: [/http-echo, -version]}\n"
    )]
    #[case::http_probe(
        "hashicorp/http-echo:1.0",
        "        readinessProbe:\n          httpGet: {path: /health, port: 5678}\n"
    )]
    fn hooks_that_can_run_are_fine(#[case] image: &str, #[case] extra: &str) {
        assert_eq!(shell_findings(image, extra), Vec::<String>::new());
    }
}
