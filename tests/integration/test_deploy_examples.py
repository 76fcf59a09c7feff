"""The deployment examples (deploy/compose/, deploy/kubernetes/): Docker and Kubernetes do not
run here, so this checks what can be checked without them.

- Every environment variable they give pyindex is one pyindex reads (a flag's variable in
  ``pyindex serve --help``, or a documented one: the first admin's password, the AWS
  credentials), and pyindex accepts their values (it starts and fails only at reaching the
  database or the bucket, which are not there).
- Their probe paths exist on a running server and answer 200; ports agree.
- nginx.conf passes ``nginx -t`` with the replicas' host names replaced by loopback addresses,
  and with one live pyindex and two dead replicas every request still succeeds
  (``proxy_next_upstream``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

import auth_support as A
from conftest import pyindex_bin

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
COMPOSE = DEPLOY / "compose" / "compose.yaml"
NGINX_CONF = DEPLOY / "compose" / "nginx.conf"
KUBERNETES = DEPLOY / "kubernetes" / "pyindex.yaml"
REPLICAS = ("pyindex1", "pyindex2", "pyindex3")
# Read by pyindex without a flag of their own; each must be documented in the README.
READ_WITHOUT_FLAG = {"PYINDEX_ADMIN_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"}


def load_yaml_documents(path: Path) -> list:
    """PyYAML from this venv, else from the machine's python3 (the clients venv lacks it)."""
    try:
        import yaml
    except ImportError:
        code = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"
        for python3 in ("/usr/bin/python3", "/usr/local/bin/python3", shutil.which("python3") or ""):
            if not python3 or not Path(python3).exists():
                continue
            proc = subprocess.run([python3, "-c", code, str(path)], capture_output=True, text=True)
            if proc.returncode == 0:
                return json.loads(proc.stdout)
        pytest.skip("PyYAML is not installed")
    return list(yaml.safe_load_all(path.read_text()))


def flag_variables() -> set[str]:
    out = subprocess.run([str(pyindex_bin()), "serve", "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\[env: ([A-Z0-9_]+)", out))


def assert_read_by_pyindex(names: set[str]) -> None:
    known = flag_variables()
    for name in READ_WITHOUT_FLAG:
        assert name in README, f"{name} is not documented"
    unknown = names - known - READ_WITHOUT_FLAG
    assert not unknown, f"pyindex reads no {sorted(unknown)}"


def compose_services() -> dict:
    (compose,) = load_yaml_documents(COMPOSE)
    return compose["services"]


def kubernetes_objects() -> dict[str, dict]:
    return {doc["kind"]: doc for doc in load_yaml_documents(KUBERNETES)}


def pyindex_container() -> dict:
    (container,) = kubernetes_objects()["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def test_compose_runs_three_replicas_on_one_database_and_bucket_behind_nginx():
    services = compose_services()
    assert {"postgres", "s3", "create-bucket", "nginx", *REPLICAS} <= set(services)
    envs = [services[name]["environment"] for name in REPLICAS]
    assert all(env == envs[0] for env in envs), "every replica must be configured alike"
    env = envs[0]
    assert env["PYINDEX_DATABASE"].startswith("postgres://") and "@postgres:5432/" in env["PYINDEX_DATABASE"]
    assert env["PYINDEX_STORAGE"].startswith("s3://") and env["PYINDEX_S3_ENDPOINT"] == "http://s3:8333"
    assert_read_by_pyindex(set(env))
    volumes = {services[name]["volumes"][0] for name in REPLICAS}
    assert len(volumes) == 3, "each replica needs its own /data"
    for name in REPLICAS:
        service = services[name]
        assert service["build"] == {"context": "../..", "dockerfile": "deploy/Dockerfile"}
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert "/ready" in " ".join(service["healthcheck"]["test"])
        assert service["depends_on"]["create-bucket"]["condition"] == "service_completed_successfully"
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in services["nginx"]["volumes"]
    conf = NGINX_CONF.read_text()
    for name in REPLICAS:
        assert f"server {name}:9001" in conf
    assert "9001" in (DEPLOY / "Dockerfile").read_text()


def test_the_kubernetes_manifest_probes_ready_and_takes_credentials_from_its_secret():
    objects = kubernetes_objects()
    assert {"Secret", "Deployment", "Service"} <= set(objects)
    deployment = objects["Deployment"]
    assert deployment["spec"]["replicas"] == 3
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert objects["Service"]["spec"]["selector"] == labels
    container = pyindex_container()
    (port,) = container["ports"]
    assert objects["Service"]["spec"]["ports"][0]["targetPort"] == port["name"]
    assert container["startupProbe"]["httpGet"] == {"path": "/ready", "port": port["name"]}
    # Not /ready or /health: a database outage would empty the Service or restart every pod.
    assert container["readinessProbe"]["httpGet"] == {"path": "/live", "port": port["name"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/live", "port": port["name"]}

    env = {e["name"]: e for e in container["env"]}
    assert_read_by_pyindex(set(env))
    assert env["PYINDEX_LISTEN"]["value"].endswith(f":{port['containerPort']}")
    secret = objects["Secret"]
    for name in ("PYINDEX_DATABASE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "PYINDEX_ADMIN_PASSWORD"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"], name
        assert ref["key"] in secret["stringData"], name
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert env["PYINDEX_DATA"]["value"] in mounts, "the data directory must be writable"


def plain_env(pairs: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYINDEX_", "AWS_"))}
    env.update(pairs)
    return env


@pytest.mark.parametrize("example", ["compose", "kubernetes"])
def test_pyindex_accepts_every_value_the_examples_set(tmp_path, example):
    """`pyindex serve` with the example's environment (hosts pointed at a closed loopback port)
    gets past reading its configuration and stops at reaching the database."""
    if example == "compose":
        values = dict(compose_services()["pyindex1"]["environment"])
    else:
        values = {e["name"]: e.get("value", "secret") for e in pyindex_container()["env"]}
        values["PYINDEX_DATABASE"] = "postgres://pyindex:secret@db.invalid:5432/pyindex"
    values = {k: str(v) for k, v in values.items()}
    values["PYINDEX_DATABASE"] = re.sub(r"@[^/]+/", "@127.0.0.1:1/", values["PYINDEX_DATABASE"])
    values["PYINDEX_S3_ENDPOINT"] = "http://127.0.0.1:1"
    values["PYINDEX_DATABASE_ACQUIRE_TIMEOUT"] = "1s"
    values["PYINDEX_DATA"] = str(tmp_path / "data")
    values["PYINDEX_LISTEN"] = f"127.0.0.1:{A.free_port()}"
    proc = subprocess.run(
        [str(pyindex_bin()), "serve"], env=plain_env(values), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "could not open the PostgreSQL catalog" in out or "could not open the file storage" in out, out


def test_the_probe_paths_exist(server):
    paths = {pyindex_container()[probe]["httpGet"]["path"]
             for probe in ("startupProbe", "readinessProbe", "livenessProbe")}
    for name in REPLICAS:
        paths |= set(re.findall(r"GET (/\S+) HTTP", " ".join(compose_services()[name]["healthcheck"]["test"])))
    paths.add("/health")
    assert "/ready" in paths
    for path in sorted(paths):
        assert server.get(path).status == 200, path


def nginx_conf_for(tmp_path: Path, ports: list[int], listen: int) -> Path:
    conf = NGINX_CONF.read_text()
    for name, port in zip(REPLICAS, ports):
        conf = conf.replace(f"server {name}:9001", f"server 127.0.0.1:{port}")
    conf = conf.replace("listen 80;", f"listen 127.0.0.1:{listen};")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    return path


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed")
def test_nginx_conf_passes_nginx_t_and_skips_dead_replicas(tmp_path, server):
    dead = [A.free_port(), A.free_port()]
    listen = A.free_port()
    conf = nginx_conf_for(tmp_path, [server.port, *dead], listen)
    checked = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-e", "stderr", "-c", str(conf)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen([NGINX, "-p", str(tmp_path), "-e", "stderr", "-c", str(conf), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(f"http://127.0.0.1:{listen}/health", timeout=5)
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        # Round robin sends some of these to the dead replicas first: all must succeed.
        for _ in range(12):
            r = requests.get(f"http://127.0.0.1:{listen}/simple/", timeout=10)
            assert r.status_code == 200, (r.status_code, r.text)
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
