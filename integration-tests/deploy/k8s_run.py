#!/usr/bin/env python3
"""Runs a rendered Kubernetes layout's processes on this machine as its
manifests configure them, and syncs through it.

What a cluster would do, done by hand: every pod of every Deployment is a
process in a network namespace of its own (its own address on one bridge,
the same ports as in the manifest), started with the container's command
and arguments, its environment (values, ConfigMap and Secret references,
envFrom), its user and group, and its volumes (Secrets and projected
Secrets, as files at their mount paths). Each Service is an address that
spreads connections over the pods its readiness probes pass; the names
pods use (`redis`, `tokenserver.firefox-sync.svc.cluster.local`) resolve
to it. The Ingress routes by Host to the Services. Probes are polled as the
kubelet would (period, threshold); Jobs run to completion (retried up to
their backoffLimit); each CronJob runs once; at the end every pod gets its
preStop hook, then SIGTERM, and must exit cleanly within its grace period.
The end-to-end test syncs from a client namespace through the Ingress.

Not emulated: resource limits, read-only root file systems, network
policies, the service-link environment variables.

    k8s_run.py RENDERED.yaml SECRETS.json BINARY_DIR
        SECRETS.json: {"secret-name": {"key": "value"}} (the operator's)
Root (namespaces, mounts).
"""

import asyncio
import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

NET = os.environ.get("K8S_NET", "10.78.0")
BRIDGE = "synck8s0"
INGRESS_IP = f"{NET}.250"
CLIENT_NS = "k8s-client"
# What the images' default commands are here.
IMAGE_COMMANDS = {
    "firefox-sync-server": ["/usr/local/bin/syncserver"],
    # The official image runs it without protected mode.
    "redis": ["redis-server", "--protected-mode", "no"],
}
OUR_BINARIES = ["syncserver", "syncstorage", "tokenserver"]


def log(*args):
    print(*args, flush=True)


def run(*args, check=True, **kw):
    return subprocess.run(args, check=check, **kw)


class Pod:
    """One replica: a namespace, an address, one container's process."""

    serial = itertools.count(10)

    def __init__(self, cluster, name, template, owner):
        self.cluster = cluster
        self.name = name
        self.owner = owner
        self.spec = template["spec"]
        self.labels = template["metadata"].get("labels", {})
        self.container = self.spec["containers"][0]
        self.ip = f"{NET}.{next(Pod.serial)}"
        self.ns = f"k8s-{name}"
        self.dir = os.path.join(cluster.work, name)
        self.process = None
        self.ready = False
        self.liveness_failures = 0
        self.log_path = os.path.join(self.dir, "log")
        os.makedirs(self.dir)

    def ports(self):
        return {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}

    def port(self, name_or_number):
        """A probe's or a Service's target port, by name or number."""
        return self.ports()[name_or_number] if isinstance(name_or_number, str) else name_or_number

    def environment(self):
        cm, secrets = self.cluster.configmaps, self.cluster.secrets
        env = {}
        for source in self.container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(cm[source["configMapRef"]["name"]])
            if "secretRef" in source:
                env.update(secrets[source["secretRef"]["name"]])
        for var in self.container.get("env", []):
            if "value" in var:
                env[var["name"]] = var["value"]
            elif "configMapKeyRef" in var.get("valueFrom", {}):
                ref = var["valueFrom"]["configMapKeyRef"]
                env[var["name"]] = cm[ref["name"]][ref["key"]]
            elif "secretKeyRef" in var.get("valueFrom", {}):
                ref = var["valueFrom"]["secretKeyRef"]
                env[var["name"]] = secrets[ref["name"]][ref["key"]]
        # $(VAR) in arguments is the kubelet's; none of ours uses it.
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        env.setdefault("HOSTNAME", self.name)
        return env

    def volumes(self):
        """Each mounted volume's files, written out: {mount path: dir}."""
        by_name = {v["name"]: v for v in self.spec.get("volumes", [])}
        mounts = {}
        for mount in self.container.get("volumeMounts", []):
            volume = by_name[mount["name"]]
            sources = volume.get("projected", {}).get("sources", [])
            if "secret" in volume:
                sources = [{"secret": {**volume["secret"], "name": volume["secret"]["secretName"]}}]
            directory = os.path.join(self.dir, "volumes", mount["name"])
            os.makedirs(directory, exist_ok=True)
            for source in sources:
                secret = self.cluster.secrets[source["secret"]["name"]]
                items = source["secret"].get("items") or [{"key": k, "path": k} for k in secret]
                for item in items:
                    with open(os.path.join(directory, item["path"]), "w") as f:
                        f.write(secret[item["key"]])
            os.chmod(directory, 0o755)
            mounts[mount["mountPath"]] = directory
        return mounts

    def command(self):
        c = self.container
        image = c["image"]
        default = next(cmd for key, cmd in IMAGE_COMMANDS.items() if key in image)
        if "command" in c:
            return c["command"] + c.get("args", [])
        return default + c.get("args", [])

    def launcher(self, argv):
        """The shell lines that give the process its files and user."""
        lines = ["set -e", "mount -t tmpfs tmpfs /usr/local/bin"]
        for b in OUR_BINARIES:
            target = f"/usr/local/bin/{b}"
            lines += [f"touch {target}", f"mount --bind {shlex.quote(self.cluster.binary(b))} {target}"]
        for path, directory in self.volumes().items():
            self.cluster.make_dirs(path)
            lines.append(f"mount --bind {shlex.quote(directory)} {shlex.quote(path)}")
        security = {**self.spec.get("securityContext", {}), **self.container.get("securityContext", {})}
        uid = security.get("runAsUser", 0)
        gid = security.get("runAsGroup", uid)
        env = [f"{k}={v}" for k, v in self.environment().items()]
        lines.append(
            "exec setpriv "
            + f"--reuid={uid} --regid={gid} --clear-groups env -i -C {shlex.quote(self.dir)} "
            + " ".join(shlex.quote(a) for a in env + argv)
        )
        return "\n".join(lines)

    def in_pod(self, argv):
        """The command line that runs argv inside this pod."""
        return ["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private",
                "sh", "-c", self.launcher(argv)]

    def start(self):
        os.chmod(self.dir, 0o777)
        log_file = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.in_pod(self.command()),
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def exec(self, argv):
        """`kubectl exec` into this pod: argv with the container's env."""
        return subprocess.run(self.in_pod(argv), capture_output=True, text=True)

    def tail(self, n=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Cluster:
    def __init__(self, objects, secrets, bin_dir, work):
        self.objects = objects
        self.secrets = secrets
        self.bin_dir = os.path.abspath(bin_dir)
        self.work = work
        self.configmaps = {o["metadata"]["name"]: o.get("data", {}) for o in objects if o["kind"] == "ConfigMap"}
        self.pods: list[Pod] = []
        self.services = {}
        self.made_dirs = set()
        self.namespaces = []
        self.links = []
        self.rr = itertools.count()
        self.namespace = next((o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"), "default")

    def make_dirs(self, path):
        """Creates `path` and its missing parents, remembered for cleanup."""
        missing = []
        while not os.path.exists(path):
            missing.append(path)
            path = os.path.dirname(path)
        for p in reversed(missing):
            os.mkdir(p)
            self.made_dirs.add(p)

    def binary(self, name):
        return os.path.join(self.bin_dir, name)

    def of_kind(self, kind):
        return [o for o in self.objects if o["kind"] == kind]

    # The network: a bridge, a namespace per pod, service addresses.
    def network(self):
        self.remove_network()
        run("ip", "link", "add", BRIDGE, "type", "bridge")
        run("ip", "addr", "add", f"{NET}.1/24", "dev", BRIDGE)
        run("ip", "link", "set", BRIDGE, "up")
        serial = itertools.count(200)
        for service in self.of_kind("Service"):
            ip = f"{NET}.{next(serial)}"
            self.services[service["metadata"]["name"]] = (ip, service)
            run("ip", "addr", "add", f"{ip}/32", "dev", BRIDGE)
        run("ip", "addr", "add", f"{INGRESS_IP}/32", "dev", BRIDGE)

    def add_namespace(self, ns, ip):
        run("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        veth = f"vk{ip.rsplit('.', 1)[1]}"
        self.links.append(veth)
        run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        run("ip", "link", "set", veth, "master", BRIDGE, "up")
        run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", ns, "link", "set", "eth0", "up")
        run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "-n", ns, "route", "add", "default", "via", f"{NET}.1")
        os.makedirs(f"/etc/netns/{ns}", exist_ok=True)
        with open(f"/etc/netns/{ns}/hosts", "w") as f:
            f.write(self.hosts())

    def hosts(self):
        lines = ["127.0.0.1 localhost"]
        for name, (ip, _) in self.services.items():
            fq = f"{name}.{self.namespace}.svc"
            lines.append(f"{ip} {name} {fq} {fq}.cluster.local")
        for ingress in self.of_kind("Ingress"):
            for rule in ingress["spec"]["rules"]:
                lines.append(f"{INGRESS_IP} {rule['host']}")
        return "\n".join(lines) + "\n"

    def remove_network(self):
        """What this run made; also the bridge an earlier, killed run left
        (its name is this test's)."""
        for ns in self.namespaces:
            run("ip", "netns", "del", ns, check=False)
            run("rm", "-rf", f"/etc/netns/{ns}", check=False)
        # A namespace a process still holds outlives `del`, and so its link.
        for link in self.links:
            run("ip", "link", "del", link, check=False, stderr=subprocess.DEVNULL)
        run("ip", "link", "del", BRIDGE, check=False, stderr=subprocess.DEVNULL)

    # Pods, Services, the Ingress, the kubelet's probes.
    def new_pod(self, name, template, owner):
        pod = Pod(self, name, template, owner)
        self.add_namespace(pod.ns, pod.ip)
        self.pods.append(pod)
        return pod

    def endpoints(self, service):
        selector = service["spec"]["selector"]
        return [p for p in self.pods
                if p.owner == "Deployment" and p.ready and p.process and p.process.poll() is None
                and all(p.labels.get(k) == v for k, v in selector.items())]

    async def pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def connect_service(self, name, port_name_or_number):
        ip, service = self.services[name]
        port = next(p for p in service["spec"]["ports"]
                    if port_name_or_number in (p["name"], p["port"]))
        pods = self.endpoints(service)
        if not pods:
            raise ConnectionError(f"Service {name} has no ready endpoint")
        pod = pods[next(self.rr) % len(pods)]
        return await asyncio.open_connection(pod.ip, pod.port(port["targetPort"]))

    async def serve_services(self):
        servers = []
        for name, (ip, service) in self.services.items():
            for port in service["spec"]["ports"]:
                async def handle(reader, writer, name=name, port=port["port"]):
                    try:
                        up_reader, up_writer = await self.connect_service(name, port)
                    except (ConnectionError, OSError):
                        writer.close()
                        return
                    await asyncio.gather(self.pipe(reader, up_writer), self.pipe(up_reader, writer))
                servers.append(await asyncio.start_server(handle, ip, port["port"]))
        servers.append(await asyncio.start_server(self.ingress, INGRESS_IP, 80))
        return servers

    async def ingress(self, reader, writer):
        """Routes each connection by its first request's Host."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        host = ""
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if line.lower().startswith("host:"):
                host = line.split(":", 1)[1].strip().split(":")[0]
        backend = None
        for ingress in self.of_kind("Ingress"):
            for rule in ingress["spec"]["rules"]:
                if rule["host"] == host:
                    backend = rule["http"]["paths"][0]["backend"]["service"]
        if not backend:
            writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            writer.close()
            return
        try:
            up_reader, up_writer = await self.connect_service(backend["name"], backend["port"]["name"])
        except (ConnectionError, OSError):
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            writer.close()
            return
        up_writer.write(head)
        await asyncio.gather(self.pipe(reader, up_writer), self.pipe(up_reader, writer))

    async def probe_once(self, pod, probe):
        if "httpGet" in probe:
            get = probe["httpGet"]
            url = f"http://{pod.ip}:{pod.port(get['port'])}{get['path']}"
            def fetch():
                try:
                    with urllib.request.urlopen(url, timeout=probe.get("timeoutSeconds", 1)) as r:
                        return 200 <= r.status < 400
                except Exception:
                    return False
            return await asyncio.to_thread(fetch)
        port = pod.port(probe["tcpSocket"]["port"])
        try:
            _, w = await asyncio.wait_for(asyncio.open_connection(pod.ip, port), probe.get("timeoutSeconds", 1))
            w.close()
            return True
        except (OSError, asyncio.TimeoutError):
            return False

    async def kubelet(self, pod):
        """Startup, then readiness and liveness, at their periods."""
        c = pod.container
        startup = c.get("startupProbe")
        if startup:
            for _ in range(startup.get("failureThreshold", 3) + 1):
                if await self.probe_once(pod, startup):
                    break
                await asyncio.sleep(startup.get("periodSeconds", 10))
            else:
                pod.liveness_failures += 1
        async def readiness():
            probe = c.get("readinessProbe")
            failures = 0
            while probe:
                ok = await self.probe_once(pod, probe)
                failures = 0 if ok else failures + 1
                pod.ready = ok or (pod.ready and failures < probe.get("failureThreshold", 3))
                await asyncio.sleep(probe.get("periodSeconds", 10) if pod.ready else 0.5)
            pod.ready = True
        async def liveness():
            probe = c.get("livenessProbe")
            failures = 0
            while probe:
                await asyncio.sleep(probe.get("periodSeconds", 10))
                failures = 0 if await self.probe_once(pod, probe) else failures + 1
                if failures >= probe.get("failureThreshold", 3):
                    pod.liveness_failures += 1
                    failures = 0
        await asyncio.gather(readiness(), liveness())

    async def wait_ready(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pod in self.pods:
                if pod.process.poll() is not None:
                    raise SystemExit(f"FAIL: pod {pod.name} exited:\n{pod.tail()}")
            if all(p.ready for p in self.pods if p.owner == "Deployment"):
                return
            await asyncio.sleep(0.2)
        late = [p.name for p in self.pods if not p.ready]
        raise SystemExit(f"FAIL: not ready after {timeout} s: {late}")

    async def run_job(self, name, template, backoff_limit):
        """A Job's pod, run again after each failure, up to backoffLimit."""
        for attempt in range(backoff_limit + 1):
            pod = self.new_pod(f"{name}-{attempt}", template, "Job")
            pod.start()
            code = await asyncio.to_thread(pod.process.wait)
            if code == 0:
                log(f"job {name}: done (attempt {attempt + 1})")
                return pod
            await asyncio.sleep(min(2 ** attempt, 5))
        raise SystemExit(f"FAIL: job {name} failed {backoff_limit + 1} times:\n{pod.tail()}")

    async def stop(self, pod):
        """As the kubelet stops a pod: out of the endpoints, preStop, SIGTERM,
        then the grace period."""
        pod.ready = False
        pre_stop = pod.container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        grace = pod.spec.get("terminationGracePeriodSeconds", 30)
        started = time.monotonic()
        if pre_stop:
            await asyncio.to_thread(pod.exec, pre_stop)
        os.killpg(pod.process.pid, signal.SIGTERM)
        left = grace - (time.monotonic() - started)
        try:
            code = await asyncio.wait_for(asyncio.to_thread(pod.process.wait), max(left, 1))
        except asyncio.TimeoutError:
            os.killpg(pod.process.pid, signal.SIGKILL)
            raise SystemExit(f"FAIL: pod {pod.name} outlived its grace period of {grace} s")
        return code

    def kill_all(self):
        for pod in self.pods:
            if pod.process and pod.process.poll() is None:
                try:
                    os.killpg(pod.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def cleanup(self):
        self.kill_all()
        self.remove_network()
        for path in sorted(self.made_dirs, reverse=True):
            try:
                os.rmdir(path)
            except OSError:
                pass


async def main(rendered, secrets_file, bin_dir):
    objects = [o for o in yaml.safe_load_all(open(rendered)) if o]
    secrets = json.load(open(secrets_file))
    work = tempfile.mkdtemp(prefix="k8s-run.")
    os.chmod(work, 0o755)
    cluster = Cluster(objects, secrets, bin_dir, work)
    try:
        return await scenario(cluster)
    except BaseException:
        for pod in cluster.pods:
            print(f"--- {pod.name} ({pod.ip})\n{pod.tail()}", file=sys.stderr)
        raise
    finally:
        cluster.cleanup()


async def scenario(cluster):
    cluster.network()
    servers = await cluster.serve_services()
    log(f"services: {', '.join(f'{n} {ip}' for n, (ip, _) in cluster.services.items())}; ingress {INGRESS_IP}")
    kubelets = []
    for deployment in cluster.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        for i in range(deployment["spec"].get("replicas", 1)):
            pod = cluster.new_pod(f"{name}-{i}", deployment["spec"]["template"], "Deployment")
            pod.start()
            kubelets.append(asyncio.create_task(cluster.kubelet(pod)))
            log(f"pod {pod.name}: {pod.ip}, {' '.join(pod.command())}")
    await cluster.wait_ready()
    log("every pod ready")
    for job in cluster.of_kind("Job"):
        spec = job["spec"]
        await cluster.run_job(job["metadata"]["name"], spec["template"], spec.get("backoffLimit", 6))

    cluster.add_namespace(CLIENT_NS, f"{NET}.5")
    hosts = [rule["host"] for i in cluster.of_kind("Ingress") for rule in i["spec"]["rules"]]
    tokenserver_host = next(h for h in hosts if not h.startswith("node-"))
    nodes = ",".join(f"http://{h}" for h in hosts if h.startswith("node-"))
    for round_ in (1, 2):
        log(f"== the end-to-end test through the Ingress ({round_})")
        code = await asyncio.to_thread(
            subprocess.call,
            ["ip", "netns", "exec", CLIENT_NS, "env", f"SYNC_E2E_SERVER=http://{tokenserver_host}",
             f"SYNC_E2E_NODES={nodes}", "cargo", "test", "--quiet", "-p", "syncserver", "--test", "e2e",
             "firefox_syncs_through_the_all_in_one_server"],
        )
        if code != 0:
            raise SystemExit("FAIL: the end-to-end test failed through the cluster")

    # `kubectl exec deploy/tokenserver -- tokenserver node list`: both nodes
    # registered, and found healthy by the tokenserver's checks (which reach
    # them at their URLs, through the Ingress).
    tokenserver = next(p for p in cluster.pods if p.owner == "Deployment" and "tokenserver" in p.command()[0])
    interval = int(tokenserver.environment().get("SYNC_TOKENSERVER__NODE_CHECK_INTERVAL_SECONDS", "10"))
    deadline = time.monotonic() + 3 * interval
    while True:
        listing = tokenserver.exec(["/usr/local/bin/tokenserver", "node", "list"]).stdout
        rows = {line.split()[1]: line.split() for line in listing.splitlines()[1:] if line.strip()}
        # Columns: id, node, capacity, load, available, users, health.
        if all(rows.get(node, [""] * 7)[6] == "ok" and int(rows[node][5]) >= 1
               for node in nodes.split(",")):
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"FAIL: the nodes are not registered, healthy and in use:\n{listing}")
        await asyncio.sleep(1)
    log(listing.strip())

    for cron in cluster.of_kind("CronJob"):
        spec = cron["spec"]["jobTemplate"]["spec"]
        await cluster.run_job(cron["metadata"]["name"], spec["template"], spec.get("backoffLimit", 6))

    failing = [p.name for p in cluster.pods if p.liveness_failures]
    if failing:
        raise SystemExit(f"FAIL: liveness probes failed (the kubelet would restart): {failing}")
    log("== SIGTERM, as on a rollout")
    running = [p for p in cluster.pods if p.owner == "Deployment"]
    codes = await asyncio.gather(*(cluster.stop(p) for p in running))
    bad = [f"{p.name}: {c}" for p, c in zip(running, codes) if c != 0]
    if bad:
        raise SystemExit(f"FAIL: pods did not exit cleanly: {bad}")
    for k in kubelets:
        k.cancel()
    for s in servers:
        s.close()
    log(f"cluster run passed: {len(running)} pods, {len(cluster.of_kind('Job'))} jobs, "
        f"{len(cluster.of_kind('CronJob'))} cron jobs")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
