#!/usr/bin/env python3
"""Static checks of deploy/: every Kubernetes manifest and compose file parses; they name the
same image and tag (the CMake project version), the same ports and the same health
endpoints; nothing asks for privileges. Usage: check.py VERSION (run from the repository)."""
import glob
import os
import re
import sys

import yaml

VERSION = sys.argv[1]
IMAGE = "ccgate"
# The ports and health URLs every deployment uses (deploy/docker/Dockerfile's conventions).
SERVER_PORT, CLIENT_PORT, WORKER_PORT, ADMIN_PORT = 8443, 8080, 8000, 9090
HEALTH = {
    "ccgate-server": {"http://127.0.0.1:%d/readyz" % ADMIN_PORT, "http://127.0.0.1:%d/healthz" % ADMIN_PORT},
    "ccgate-client": {"http://127.0.0.1:%d/readyz" % ADMIN_PORT, "http://127.0.0.1:%d/healthz" % ADMIN_PORT},
    "ccgate-worker": {"http://127.0.0.1:%d/health" % WORKER_PORT},
}
errors = []


def check(cond, what):
    if not cond:
        errors.append(what)


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def program(command):
    """The ccgate program a container runs (its command's first word, or the exec'd one)."""
    words = " ".join(command or [])
    for p in ("ccgate-server", "ccgate-client", "ccgate-worker"):
        if p in words:
            return p
    return None


# Dockerfile: the conventions above.
dockerfile = open("deploy/docker/Dockerfile").read()
check(re.search(r"^EXPOSE %d %d$" % (CLIENT_PORT, SERVER_PORT), dockerfile, re.M), "Dockerfile: EXPOSE")
check("HEALTHCHECK" in dockerfile and "ccgate health" in dockerfile, "Dockerfile: HEALTHCHECK")
check(re.search(r"^USER 10001:10001$", dockerfile, re.M), "Dockerfile: USER")

# Kubernetes.
k8s_docs = {}
for path in sorted(glob.glob("deploy/k8s/**/*.yaml", recursive=True)):
    docs = load_all(path)
    check(docs, "%s: empty" % path)
    k8s_docs[path] = docs
    for d in docs:
        check("kind" in d and "apiVersion" in d, "%s: kind and apiVersion" % path)
        if d.get("kind") == "Kustomization":
            base = os.path.dirname(path)
            for r in d.get("resources", []):
                check(os.path.exists(os.path.join(base, r)), "%s: resource %s missing" % (path, r))
            for img in d.get("images", []):
                if img["name"] == IMAGE:
                    check(img.get("newTag") == VERSION, "%s: image tag %s, expected %s" % (path, img.get("newTag"), VERSION))

containers = {}
services = []
for path, docs in k8s_docs.items():
    for d in docs:
        if d.get("kind") == "Deployment":
            spec = d["spec"]["template"]["spec"]
            check(spec.get("automountServiceAccountToken") is False, "%s: service account token" % path)
            for c in spec["containers"]:
                p = program(c.get("command"))
                if p is None:
                    continue
                containers[p] = (path, c)
                check(c["image"] == IMAGE, "%s: %s image %s, expected %s (tag set by kustomize)" % (path, p, c["image"], IMAGE))
                sc = c.get("securityContext", {})
                check(sc.get("privileged") is not True and sc.get("allowPrivilegeEscalation") is False,
                      "%s: %s may escalate privileges" % (path, p))
                check(sc.get("readOnlyRootFilesystem") is True, "%s: %s root not read-only" % (path, p))
                check(sc.get("capabilities", {}).get("drop") == ["ALL"] and not sc.get("capabilities", {}).get("add"),
                      "%s: %s must drop every capability and add none" % (path, p))
                for probe in ("readinessProbe", "livenessProbe"):
                    cmd = c.get(probe, {}).get("exec", {}).get("command", [])
                    check(cmd[:2] == ["ccgate", "health"] and len(cmd) == 3 and cmd[2] in HEALTH[p],
                          "%s: %s %s %s, expected ccgate health one of %s" % (path, p, probe, cmd, sorted(HEALTH[p])))
                if p == "ccgate-worker":
                    check("127.0.0.1:%d" % WORKER_PORT in c["command"], "%s: worker must listen on 127.0.0.1:%d" % (path, WORKER_PORT))
        if d.get("kind") == "Service":
            services.append((path, d))
        if d.get("kind") == "ConfigMap":
            for key, text in d["data"].items():
                if key.endswith(".json"):
                    import json
                    try:
                        conf = json.loads(text)
                    except ValueError as e:
                        errors.append("%s: %s: %s" % (path, key, e))
                        continue
                    if "admin" in conf:
                        check(conf["admin"] == "127.0.0.1:%d" % ADMIN_PORT, "%s: %s admin %s" % (path, key, conf["admin"]))
                    if key == "server.json":
                        check(conf["listen"].endswith(":%d" % SERVER_PORT), "%s: server listen" % path)
                        check(conf["upstream"] == "127.0.0.1:%d" % WORKER_PORT, "%s: server upstream" % path)
                    if key == "client.json":
                        check(conf["listen"] == "127.0.0.1:%d" % CLIENT_PORT, "%s: client listen" % path)
                        check(conf["server"].endswith(":%d" % SERVER_PORT), "%s: client server" % path)
check(set(containers) == {"ccgate-server", "ccgate-worker", "ccgate-client"}, "k8s: containers %s" % sorted(containers))
check(len(services) == 1, "k8s: expected one Service (the RA-TLS port), got %d" % len(services))
for path, s in services:
    ports = s["spec"]["ports"]
    check(len(ports) == 1 and ports[0]["port"] == SERVER_PORT, "%s: the Service must expose %d only" % (path, SERVER_PORT))
    srv = containers.get("ccgate-server", (None, {}))[1]
    names = {p.get("name"): p["containerPort"] for p in srv.get("ports", [])}
    check(names.get(ports[0]["targetPort"]) == SERVER_PORT, "%s: targetPort %s is not the server's %d" % (path, ports[0]["targetPort"], SERVER_PORT))

# Compose files: the same image, ports, health URLs; no privileges.
for path in sorted(glob.glob("deploy/compose/*.yml") + glob.glob("deploy/test/*.yml")):
    doc = load_all(path)[0]
    check(doc.get("version") == "2.4", "%s: compose file format 2.4 (docker-compose 1.29 and docker compose)" % path)
    for name, s in doc.get("services", {}).items():
        check(not s.get("privileged"), "%s: %s privileged" % (path, name))
        check("SYS_ADMIN" not in " ".join(s.get("cap_add", [])), "%s: %s CAP_SYS_ADMIN" % (path, name))
        img = s.get("image", "")
        if img.startswith(IMAGE + ":") or img.startswith("${CCGATE_WORKER_IMAGE"):
            check(img.endswith(":%s" % VERSION) or img.endswith(":%s}" % VERSION), "%s: %s image %s" % (path, name, img))
        p = program((s.get("command") or []) + (s.get("entrypoint") or []))
        url = s.get("environment", {}).get("CCGATE_HEALTH_URL")
        if p is not None and url is not None:
            check(url in HEALTH[p], "%s: %s CCGATE_HEALTH_URL %s, expected one of %s" % (path, name, url, sorted(HEALTH[p])))
        for port in s.get("ports", []):
            check(port.endswith(":%d" % SERVER_PORT) if p == "ccgate-server" else port.endswith(":%d" % CLIENT_PORT),
                  "%s: %s publishes %s" % (path, name, port))
            if p == "ccgate-client":
                check(port.startswith("127.0.0.1:"), "%s: the client publishes on loopback only (%s)" % (path, port))
        if p == "ccgate-worker":
            check(s.get("network_mode") == "service:ccgate-server" and not s.get("ports"),
                  "%s: the worker must share the server's network namespace and publish nothing" % path)

if errors:
    for e in errors:
        print("FAIL: " + e, file=sys.stderr)
    sys.exit(1)
print("ok: %d Kubernetes manifests and the compose files agree (image %s:%s, ports %d/%d/%d, probes)" % (
    len(k8s_docs), IMAGE, VERSION, SERVER_PORT, CLIENT_PORT, WORKER_PORT))
