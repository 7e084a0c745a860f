#!/usr/bin/env python3
"""What the Kubernetes schemas cannot see in a rendered layout.

Reads `kubectl kustomize` output and checks that the objects fit together
and keep the server's rules: every reference (Service, ConfigMap, Secret
key, port name) resolves; every server has its probes on the right
endpoints, resources, a non-root read-only container and a grace period
longer than its pause plus its longest request; every storage node's URL is
an Ingress host with TLS; the ServiceMonitor finds every metrics port.

    k8s_check.py RENDERED.yaml SECRET_KEYS
        SECRET_KEYS: the keys docs/kubernetes.md puts in each Secret,
        as name=key,key;name=key
"""

import sys

import yaml

# The longest a request may take, by binary (request_timeout_seconds).
REQUEST_TIMEOUT = {"syncserver": 60, "syncstorage": 60, "tokenserver": 30}
PROBES = {"livenessProbe": "/__lbheartbeat__", "readinessProbe": "/__heartbeat__"}

problems: list[str] = []


def fail(what: str) -> None:
    problems.append(what)


def by_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def pod_specs(objects: list[dict]):
    for o in objects:
        name = f"{o['kind']}/{o['metadata']['name']}"
        spec = o.get("spec", {})
        if o["kind"] in ("Deployment", "Job"):
            yield name, o, spec["template"]
        elif o["kind"] == "CronJob":
            yield name, o, spec["jobTemplate"]["spec"]["template"]


def binary(container: dict) -> str:
    """Which of our binaries the container runs ("" for other images)."""
    if "firefox-sync-server" not in container["image"]:
        return ""
    command = container.get("command") or ["/usr/local/bin/syncserver"]
    return command[0].rsplit("/", 1)[-1]


def check_references(name: str, pod: dict, configmaps: dict, secrets: dict, claims: dict) -> None:
    for c in pod["spec"]["containers"]:
        for source in c.get("envFrom", []):
            ref = source.get("configMapRef", {}).get("name")
            if ref and ref not in configmaps:
                fail(f"{name}: no ConfigMap {ref}")
        for var in c.get("env", []):
            ref = var.get("valueFrom", {}).get("configMapKeyRef")
            if ref and ref["key"] not in configmaps.get(ref["name"], {}).get("data", {}):
                fail(f"{name}: {var['name']}: no key {ref['key']} in ConfigMap {ref['name']}")
    for volume in pod["spec"].get("volumes", []):
        claim = volume.get("persistentVolumeClaim", {}).get("claimName")
        if claim and claim not in claims:
            fail(f"{name}: no PersistentVolumeClaim {claim}")
        sources = volume.get("projected", {}).get("sources", [])
        if "secret" in volume:
            sources = [{"secret": {**volume["secret"], "name": volume["secret"]["secretName"]}}]
        for source in sources:
            secret = source.get("secret")
            if not secret:
                continue
            if secret["name"] not in secrets:
                fail(f"{name}: Secret {secret['name']} is not documented")
                continue
            for item in secret.get("items", []):
                if item["key"] not in secrets[secret["name"]]:
                    fail(f"{name}: key {item['key']} is not in Secret {secret['name']}'s documented keys")


def check_server(name: str, workload: dict, pod: dict) -> None:
    spec = pod["spec"]
    security = spec.get("securityContext", {})
    if not security.get("runAsNonRoot") or security.get("runAsUser", 0) == 0:
        fail(f"{name}: may run as root")
    for c in spec["containers"]:
        ctx = c.get("securityContext", {})
        if not ctx.get("readOnlyRootFilesystem") or ctx.get("allowPrivilegeEscalation", True):
            fail(f"{name}/{c['name']}: writable root or privilege escalation")
        if "requests" not in c.get("resources", {}) or "limits" not in c.get("resources", {}):
            fail(f"{name}/{c['name']}: no resource requests and limits")
        if workload["kind"] != "Deployment":
            continue
        which = binary(c)
        if which not in REQUEST_TIMEOUT:
            continue
        for probe, path in PROBES.items():
            got = c.get(probe, {}).get("httpGet", {}).get("path")
            if got != path:
                fail(f"{name}: {probe} is {got}, not {path}")
        pause = 0
        pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        if pre_stop[:1] == ["/bin/sleep"]:
            pause = int(pre_stop[1])
        grace = spec.get("terminationGracePeriodSeconds", 30)
        if grace < pause + REQUEST_TIMEOUT[which]:
            fail(f"{name}: terminationGracePeriodSeconds {grace} < preStop {pause} s "
                 f"+ the {which}'s request timeout {REQUEST_TIMEOUT[which]} s")
        env = {v["name"]: v.get("value") for v in c.get("env", [])}
        if env.get("SYNC_HOST") != "0.0.0.0":
            fail(f"{name}: SYNC_HOST is not 0.0.0.0: the probes could not reach it")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if str(ports.get("http")) != env.get("SYNC_PORT"):
            fail(f"{name}: port http {ports.get('http')} is not SYNC_PORT {env.get('SYNC_PORT')}")
        metrics = env.get("SYNC_METRICS_ADDRESS", "")
        if "metrics" in ports and not metrics.endswith(f":{ports['metrics']}"):
            fail(f"{name}: port metrics {ports['metrics']} is not SYNC_METRICS_ADDRESS {metrics}")


def selects(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        matched = {
            "In": labels.get(key) in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not matched:
            return False
    return True


def check_services(objects: list[dict], workloads: list[tuple]) -> None:
    services = by_kind(objects, "Service")
    for name, service in services.items():
        selector = service["spec"]["selector"]
        targets = [pod for _, w, pod in workloads
                   if w["kind"] == "Deployment" and selects({"matchLabels": selector}, pod["metadata"]["labels"])]
        if not targets:
            fail(f"Service/{name} selects no pod")
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            for pod in targets:
                names = {p["name"] for c in pod["spec"]["containers"] for p in c.get("ports", [])}
                if target not in names:
                    fail(f"Service/{name}: targetPort {target} is not a named port of its pods")
    for name, ingress in by_kind(objects, "Ingress").items():
        tls_hosts = {h for t in ingress["spec"].get("tls", []) for h in t["hosts"]}
        for rule in ingress["spec"]["rules"]:
            if rule["host"] not in tls_hosts:
                fail(f"Ingress/{name}: {rule['host']} has no TLS")
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                service = services.get(backend["name"])
                if not service:
                    fail(f"Ingress/{name}: no Service {backend['name']}")
                elif backend["port"]["name"] not in {p["name"] for p in service["spec"]["ports"]}:
                    fail(f"Ingress/{name}: Service {backend['name']} has no port {backend['port']['name']}")
    for name, monitor in by_kind(objects, "ServiceMonitor").items():
        ports = {e["port"] for e in monitor["spec"]["endpoints"]}
        for service_name, service in services.items():
            has_metrics = any(p["name"] in ports for p in service["spec"]["ports"])
            if has_metrics and not selects(monitor["spec"]["selector"], service["metadata"]["labels"]):
                fail(f"ServiceMonitor/{name} does not scrape Service/{service_name}")


def check_node_urls(objects: list[dict], workloads: list[tuple]) -> None:
    """Every storage node's public URL is served, over TLS, by an Ingress
    rule that leads to that node's own Service."""
    configmaps = by_kind(objects, "ConfigMap")
    rules = {}
    for ingress in by_kind(objects, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            rules[rule["host"]] = rule["http"]["paths"][0]["backend"]["service"]["name"]
    services = by_kind(objects, "Service")
    urls: list[tuple[dict, str]] = []
    for name, workload, pod in workloads:
        for c in pod["spec"]["containers"]:
            if workload["kind"] != "Deployment" or binary(c) not in ("syncstorage", "syncserver"):
                continue
            env = {v["name"]: v.get("value") for v in c.get("env", [])}
            for source in c.get("envFrom", []):
                ref = source.get("configMapRef", {}).get("name")
                env.update(configmaps.get(ref, {}).get("data", {}))
            url = env.get("SYNC_PUBLIC_URL", "")
            if not url.startswith("https://"):
                fail(f"{name}: SYNC_PUBLIC_URL {url!r} is not an https URL")
                continue
            host = url.removeprefix("https://").split("/")[0]
            service = services.get(rules.get(host, ""))
            if not service or not selects({"matchLabels": service["spec"]["selector"]}, pod["metadata"]["labels"]):
                fail(f"{name}: its URL's host {host} does not lead to its own pods")
            urls.append((pod["metadata"]["labels"], url))
    # A Service behind a node's host must lead to that node alone.
    for service_name in set(rules.values()):
        selector = {"matchLabels": services.get(service_name, {}).get("spec", {}).get("selector", {})}
        served = {url for labels, url in urls if selects(selector, labels)}
        if len(served) > 1:
            fail(f"Service/{service_name} leads to pods of several nodes: {sorted(served)}")


def main() -> int:
    rendered, secret_keys = sys.argv[1], sys.argv[2]
    objects = [o for o in yaml.safe_load_all(open(rendered)) if o]
    secrets = {}
    for entry in secret_keys.split(";"):
        name, keys = entry.split("=")
        secrets[name] = set(keys.split(","))
    configmaps = by_kind(objects, "ConfigMap")
    workloads = list(pod_specs(objects))
    for name, workload, pod in workloads:
        check_references(name, pod, configmaps, secrets, by_kind(objects, "PersistentVolumeClaim"))
        check_server(name, workload, pod)
    check_services(objects, workloads)
    check_node_urls(objects, workloads)
    for problem in problems:
        print(f"FAIL {rendered}: {problem}", file=sys.stderr)
    if not problems:
        print(f"{rendered}: {len(objects)} objects fit together")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
