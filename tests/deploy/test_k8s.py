"""deploy/k8s: the kustomize base renders, every object passes Kubernetes' own schemas, and the
manifests keep the rules of the design (probes, resources, scaling, and who may talk to whom).

`kubectl kustomize` renders offline; `kubernetes-validate --strict` checks each object against the
OpenAPI schemas it ships (no cluster, no network). Without either tool the tests skip, or fail when
AUTHPORT_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import importlib
import importlib.util
import ipaddress
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.settings import BY_NAME, load_settings
from tests.support.databases import services_required

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s"
# The oldest and the newest Kubernetes releases we promise to install on; kubernetes-validate
# ships offline schemas for both.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")

# process -> (module that `python -m` runs, the setting holding its port, the setting naming its URL)
PROCESSES = {
    "gateway": ("gateway", "SERVER_PORT", None),
    "store": ("services.store", "STORE_PORT", "STORE_URL"),
    "auth": ("services.auth", "AUTH_PORT", "AUTH_URL"),
    "proxy": ("services.proxy", "PROXY_PORT", "PROXY_URL"),
    "dashboard": ("services.dashboard", "DASHBOARD_PORT", "DASHBOARD_URL"),
}
BACKING = ("postgres", "redis")
COMPONENTS = (*PROCESSES, *BACKING)
SCALED = {"gateway", "proxy"}
ONLINE = {"auth", "proxy"}
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"}
# Variables the manifests set that are not Authport settings: the Redis password the Redis URL is
# assembled from.
HELPER_VARIABLES = {"REDIS_PASSWORD"}


def _missing(message: str) -> None:
    if services_required():
        pytest.fail(message)
    pytest.skip(message)


def _validator() -> list[str]:
    if importlib.util.find_spec("kubernetes_validate") is None:
        _missing("kubernetes-validate is not installed (make test installs requirements/test.txt)")
    return [sys.executable, "-m", "kubernetes_validate"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        _missing("kubectl is not installed (scripts/system-deps.sh installs Debian's kubernetes-client)")
    result = subprocess.run([kubectl, "kustomize", str(BASE)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("k8s") / "rendered.yaml"
    path.write_text(result.stdout)
    return path


@pytest.fixture(scope="module")
def objects(rendered) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(rendered.read_text()) if doc]


def of_kind(objects: list[dict], kind: str) -> dict[str, dict]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def pod_labels(component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "authport", "app.kubernetes.io/part-of": "authport",
            "app.kubernetes.io/component": component}


def selects(selector: dict | None, labels: dict[str, str]) -> bool:
    """Does a label selector (matchLabels and matchExpressions) select pods with these labels?"""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def policies_for(objects: list[dict], component: str) -> list[dict]:
    """The NetworkPolicies that apply to the pods of a component."""
    return [policy for policy in of_kind(objects, "NetworkPolicy").values()
            if selects(policy["spec"]["podSelector"], pod_labels(component))]


def components_admitted(peer: dict) -> set[str]:
    """Which of our components a same-namespace podSelector peer admits."""
    return {component for component in COMPONENTS if selects(peer.get("podSelector"), pod_labels(component))}


def container_of(deployment: dict) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


# --- rendering and schemas -------------------------------------------------------------------


def test_kustomization_lists_every_manifest():
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {path.name for path in BASE.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    assert "namespace" not in kustomization, "the base is namespace-agnostic"
    assert "secret.example.yaml" in listed, "the install is self-contained"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_strictly(rendered, version):
    command = [*_validator(), "--strict", "--quiet", "--kubernetes-version", version, str(rendered)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_is_namespace_agnostic(objects):
    assert objects
    assert [obj["metadata"]["name"] for obj in objects if "namespace" in obj["metadata"]] == []


# --- the four processes ----------------------------------------------------------------------


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_has_deployment_service_probes_and_resources(objects, process):
    module, port_setting, _ = PROCESSES[process]
    deployment = of_kind(objects, "Deployment")[f"authport-{process}"]
    service = of_kind(objects, "Service")[f"authport-{process}"]
    config = of_kind(objects, "ConfigMap")["authport-config"]["data"]
    container = container_of(deployment)
    pod_spec = deployment["spec"]["template"]["spec"]

    assert container["command"][-2:] == ["-m", module]
    assert container["image"].split(":")[0] == "authport", "one image for all four processes"
    assert selects(deployment["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])
    assert deployment["spec"]["template"]["metadata"]["labels"] == pod_labels(process)

    (http,) = [port for port in container["ports"] if port["name"] == "http"]
    assert http["containerPort"] == int(config[port_setting])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), (process, kind)

    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] != 0
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["enableServiceLinks"] is False, "service links would set e.g. STORE_PORT=tcp://…"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]

    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"].items() <= pod_labels(process).items()
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]


def test_services_find_each_other_through_their_services(objects):
    config = of_kind(objects, "ConfigMap")["authport-config"]["data"]
    services = of_kind(objects, "Service")
    assert config["BIND_HOST"] == "0.0.0.0" and config["GATEWAY_HOST"] == "0.0.0.0"
    for process, (_, _, url_setting) in PROCESSES.items():
        if url_setting:
            (port,) = services[f"authport-{process}"]["spec"]["ports"]
            assert config[url_setting] == f"http://authport-{process}:{port['port']}"
    assert config["NANGO_DB_HOST"] == "authport-postgres"


def test_settings_and_secrets_are_ones_authport_reads(objects):
    config = of_kind(objects, "ConfigMap")["authport-config"]["data"]
    secret = of_kind(objects, "Secret")["authport-secrets"]
    assert set(config) <= set(BY_NAME), set(config) - set(BY_NAME)
    secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for name in PROCESSES:
        container = container_of(of_kind(objects, "Deployment")[f"authport-{name}"])
        assert [source["configMapRef"]["name"] for source in container["envFrom"]] == ["authport-config"]
        for variable in container["env"]:
            assert variable["name"] in BY_NAME or variable["name"] in HELPER_VARIABLES, variable["name"]
            reference = (variable.get("valueFrom") or {}).get("secretKeyRef")
            if reference:
                assert reference["name"] == "authport-secrets"
                assert reference.get("optional") or reference["key"] in secret_keys, (name, reference["key"])


def test_secret_example_holds_only_placeholders(objects):
    secret = of_kind(objects, "Secret")["authport-secrets"]
    assert "data" not in secret, "the example is readable stringData"
    for key, value in secret["stringData"].items():
        assert key == "NANGO_DASHBOARD_USERNAME" or value.startswith("REPLACE_ME"), key


def test_only_the_store_holds_database_and_encryption_secrets(objects):
    for name in PROCESSES:
        container = container_of(of_kind(objects, "Deployment")[f"authport-{name}"])
        names = {variable["name"] for variable in container["env"]}
        holds = names & {"NANGO_DB_PASSWORD", "NANGO_ENCRYPTION_KEY", "NANGO_ENCRYPTION_KEYS_OLD"}
        assert bool(holds) == (name == "store"), (name, holds)


# --- scaling and disruptions -----------------------------------------------------------------


def test_gateway_and_proxy_scale_horizontally_and_nothing_else(objects):
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    deployments = of_kind(objects, "Deployment")
    targets = {hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers.values()}
    assert targets == {f"authport-{name}" for name in SCALED}
    for hpa in autoscalers.values():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    for name in SCALED:
        assert deployments[f"authport-{name}"]["spec"]["replicas"] == 2


def test_every_process_has_a_disruption_budget(objects):
    budgets = of_kind(objects, "PodDisruptionBudget").values()
    for name in PROCESSES:
        matching = [pdb for pdb in budgets if selects(pdb["spec"]["selector"], pod_labels(name))]
        assert len(matching) == 1, name
        replicas = of_kind(objects, "Deployment")[f"authport-{name}"]["spec"]["replicas"]
        spec = matching[0]["spec"]
        # A budget must leave room for a node drain: with every replica required, none may move.
        assert spec.get("maxUnavailable", 0) >= 1 or spec["minAvailable"] < replicas, name


# --- self-contained install ------------------------------------------------------------------


def test_postgres_is_a_statefulset_with_a_volume_and_redis_a_deployment(objects):
    postgres = of_kind(objects, "StatefulSet")["authport-postgres"]
    assert postgres["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    assert postgres["spec"]["serviceName"] in of_kind(objects, "Service")
    assert "authport-redis" in of_kind(objects, "Deployment")
    assert "authport-redis" in of_kind(objects, "Service")
    for workload in (postgres, of_kind(objects, "Deployment")["authport-redis"]):
        container = container_of(workload)
        assert container["readinessProbe"] and container["livenessProbe"]
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_only_the_gateway_is_exposed(objects):
    services = of_kind(objects, "Service")
    assert {svc["spec"].get("type", "ClusterIP") for svc in services.values()} == {"ClusterIP"}
    ingresses = of_kind(objects, "Ingress")
    backends = {path["backend"]["service"]["name"] for ingress in ingresses.values()
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]}
    assert backends == {"authport-gateway"}


# --- network policies ------------------------------------------------------------------------


def test_namespace_starts_from_default_deny(objects):
    denies = [policy for policy in of_kind(objects, "NetworkPolicy").values()
              if policy["spec"]["podSelector"] == {} and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
              and not policy["spec"].get("ingress") and not policy["spec"].get("egress")]
    assert denies


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_pod_may_resolve_names_through_kube_dns(objects, component):
    dns_rules = [rule for policy in policies_for(objects, component) for rule in policy["spec"].get("egress") or []
                 if any((peer.get("podSelector") or {}).get("matchLabels") == {"k8s-app": "kube-dns"}
                        for peer in rule.get("to") or [])]
    protocols = {(port["protocol"], port["port"]) for rule in dns_rules for port in rule["ports"]}
    assert protocols == {("UDP", 53), ("TCP", 53)}


@pytest.mark.parametrize("component", COMPONENTS)
def test_only_the_gateway_admits_traffic_from_outside_the_namespace(objects, component):
    outside = []
    for policy in policies_for(objects, component):
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            if not peers or any("ipBlock" in peer or "namespaceSelector" in peer for peer in peers):
                outside.append(policy["metadata"]["name"])
    assert bool(outside) == (component == "gateway"), outside


@pytest.mark.parametrize("component", COMPONENTS)
def test_only_auth_and_proxy_reach_the_internet(objects, component):
    blocks = []
    for policy in policies_for(objects, component):
        for rule in policy["spec"].get("egress") or []:
            assert rule.get("to"), f"{policy['metadata']['name']}: an egress rule without `to` reaches everything"
            blocks += [peer["ipBlock"] for peer in rule["to"] if "ipBlock" in peer]
            if any("ipBlock" in peer for peer in rule["to"]):
                assert {port["port"] for port in rule["ports"]} <= {80, 443}
    if component not in ONLINE:
        assert blocks == [], component
        return
    assert [block["cidr"] for block in blocks] == ["0.0.0.0/0"]
    assert set(blocks[0]["except"]) == PRIVATE_RANGES
    # The cluster's own addresses (private ranges) stay out of reach through this rule.
    assert all(ipaddress.ip_network(cidr).is_private or cidr == "100.64.0.0/10" for cidr in blocks[0]["except"])


def test_only_the_store_reaches_postgres(objects):
    postgres = pod_labels("postgres")
    for policy in of_kind(objects, "NetworkPolicy").values():
        applies_to_store = selects(policy["spec"]["podSelector"], pod_labels("store"))
        for rule in policy["spec"].get("egress") or []:
            for peer in rule.get("to") or []:
                names_postgres = "podSelector" in peer and selects(peer["podSelector"], postgres)
                if names_postgres:
                    assert applies_to_store, policy["metadata"]["name"]
                    assert not any(selects(policy["spec"]["podSelector"], pod_labels(other))
                                   for other in COMPONENTS if other != "store"), policy["metadata"]["name"]
    admitted = set()
    for policy in policies_for(objects, "postgres"):
        for rule in policy["spec"].get("ingress") or []:
            peers = rule.get("from")
            assert peers, f"{policy['metadata']['name']} admits everyone to postgres"
            for peer in peers:
                assert set(peer) == {"podSelector"}, peer
                admitted |= components_admitted(peer)
            assert {port["port"] for port in rule["ports"]} == {5432}
    assert admitted == {"store"}


# Who may open a connection to whom, inside the namespace, as the design draws it.
INGRESS_FROM = {
    "store": {"gateway", "auth", "proxy", "dashboard"},
    "auth": {"gateway", "store", "dashboard"},
    "proxy": {"gateway"},
    "dashboard": {"gateway"},
    "postgres": {"store"},
    "redis": {"gateway", "auth", "proxy", "store"},
}
EGRESS_TO = {
    "gateway": {"store", "auth", "proxy", "dashboard", "redis"},
    "store": {"postgres", "auth", "redis"},
    "auth": {"store", "redis"},
    "proxy": {"store", "redis"},
    "dashboard": {"store", "auth"},
    "postgres": set(),
    "redis": set(),
}


@pytest.mark.parametrize("component", COMPONENTS)
def test_paths_inside_the_namespace_are_exactly_the_designed_ones(objects, component):
    egress, ingress = set(), set()
    for policy in policies_for(objects, component):
        for rule in policy["spec"].get("egress") or []:
            for peer in rule["to"]:
                if set(peer) == {"podSelector"}:
                    egress |= components_admitted(peer)
        for rule in policy["spec"].get("ingress") or []:
            for peer in rule.get("from") or []:
                if set(peer) == {"podSelector"}:
                    ingress |= components_admitted(peer)
    assert egress == EGRESS_TO[component]
    if component != "gateway":
        assert ingress == INGRESS_FROM[component]


# --- the probes answer the kubelet -----------------------------------------------------------


@pytest.mark.parametrize("process", PROCESSES)
def test_probe_paths_answer_without_the_internal_key(objects, process, tmp_path):
    """The kubelet sends no internal key: a probe path behind it would keep every pod unready."""
    module = importlib.import_module(f"{PROCESSES[process][0]}.app")
    settings = load_settings({"INTERNAL_API_KEY": "test-internal-key", "DATA_DIR": str(tmp_path),
                              "STORE_URL": "http://127.0.0.1:9", "AUTH_URL": "http://127.0.0.1:9",
                              "PROXY_URL": "http://127.0.0.1:9", "DASHBOARD_URL": "http://127.0.0.1:9"})
    client = module.create_app(settings).test_client()
    container = container_of(of_kind(objects, "Deployment")[f"authport-{process}"])
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        status = client.get(path).status_code
        assert status in (200, 503), f"{process} {probe} {path} answers {status} without the internal key"
