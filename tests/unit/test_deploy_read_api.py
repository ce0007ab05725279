"""Deployment files and the read API: containers listen on every interface (the default,
127.0.0.1, would hide them from Prometheus and the probes) and the workers get the bearer token
from a secret (compose: a required variable; Kubernetes: a Secret reference), never a literal.

The helpers (YAML loading, chart rendering, which skips without a renderer) are test_deploy's.
"""
from __future__ import annotations

import re
from typing import Any

import pytest
from test_deploy import (
    CHART,
    COMPOSE,
    ENV_EXAMPLE,
    K8S,
    chart_values,
    environment,
    k8s_objects,
    load_yaml,
    one,
    render_chart,
    services,
    workers,
)

TOKEN = "SCORER_API_TOKEN"
BIND = "SCORER_WEB_BIND"
REQUIRED = re.compile(r"\$\{SCORER_API_TOKEN:\?[^}]+\}")


def test_compose_workers_listen_on_all_interfaces_and_require_a_token() -> None:
    found = workers()
    assert found
    for name, service in found.items():
        env = environment(service)
        assert env.get(BIND) == "0.0.0.0", f"{name}: Prometheus scrapes it over the compose network"
        assert REQUIRED.fullmatch(env.get(TOKEN, "")), f"{name}: {TOKEN} must be a required variable (`:?`)"
        ports = service.get("ports", [])
        assert ports and all(str(p).startswith("127.0.0.1:") for p in ports), f"{name}: host side stays loopback"
    assert TOKEN not in environment(services()["migrate"]), "only the workers serve the read API"


def test_env_example_has_a_token_placeholder() -> None:
    values = dict(ln.split("=", 1) for ln in ENV_EXAMPLE.read_text().splitlines()
                  if ln.strip() and not ln.startswith("#"))
    assert values.get(TOKEN) == "change-me"
    assert f"${{{TOKEN}:?" in COMPOSE.read_text()


def _worker_env(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    (container,) = one(objects, "Deployment", "worker")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def _check_objects(objects: list[dict[str, Any]], secret: str, key: str) -> None:
    assert one(objects, "ConfigMap")["data"][BIND] == "0.0.0.0", "probes and Prometheus reach the pod's address"
    token = _worker_env(objects)[TOKEN]
    assert "value" not in token, "the token is never inlined"
    assert token["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
    (migrate,) = one(objects, "Job")["spec"]["template"]["spec"]["containers"]
    assert TOKEN not in {e["name"] for e in migrate["env"]}, "the migration serves no API"


def test_k8s_deployment_takes_the_token_from_a_secret() -> None:
    _check_objects(k8s_objects(), "edu-scorer-api", "api-token")
    assert "kubectl create secret generic edu-scorer-api" in (K8S / "kustomization.yaml").read_text()


def test_helm_values_name_an_existing_secret_for_the_token() -> None:
    api = chart_values()["readApi"]
    assert api["existingSecret"] and api["existingSecretKey"]
    assert chart_values()["settings"]["webBind"] == "0.0.0.0"
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert re.search(r"required \"[^\"]+\" \.Values\.readApi\.existingSecret", helpers), "an empty name must fail"
    configmap = (CHART / "templates" / "configmap.yaml").read_text()
    assert "SCORER_WEB_BIND: {{ .Values.settings.webBind | quote }}" in configmap
    assert load_yaml(CHART / "Chart.yaml")["name"] == "edu-scorer"


def test_helm_chart_renders_the_token_reference() -> None:
    objects = render_chart()
    _check_objects(objects, "edu-scorer-api", "api-token")
    assert "Secret" not in {o["kind"] for o in objects}
    custom = render_chart({"readApi.existingSecret": "school-7-api", "readApi.existingSecretKey": "bearer"})
    _check_objects(custom, "school-7-api", "bearer")
    with pytest.raises(Exception, match=r"readApi\.existingSecret"):
        render_chart({"readApi.existingSecret": ""})
