"""config/'s NATS StatefulSet as the local cluster runs it: its data in a host directory."""

from pathlib import Path

from localcluster.controlplane import Ports
from localcluster.manifests import local_deployments

DEPLOYMENTS = Path(__file__).resolve().parents[2] / "config" / "deployments"


def test_the_nats_volume_claim_becomes_a_host_directory_that_outlives_the_pod(tmp_path: Path) -> None:
    manifests = local_deployments(sorted(DEPLOYMENTS.glob("*.yaml")), Ports.free(), "10.244.0.1",
                                  nats_dir=tmp_path / "nats")
    [nats] = [m for m in manifests if m["kind"] == "StatefulSet" and m["metadata"]["name"] == "nats"]
    assert "volumeClaimTemplates" not in nats["spec"]
    pod = nats["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["data"]["hostPath"] == {"path": str(tmp_path / "nats" / "data"), "type": "DirectoryOrCreate"}
    assert volumes["config"]["configMap"] == {"name": "nats-config"}
    [container] = pod["containers"]
    assert container["args"] == ["--config", f"{tmp_path}/nats/etc/nats.conf", "--store_dir", f"{tmp_path}/nats/data"]
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]} == {
        "config": f"{tmp_path}/nats/etc", "data": f"{tmp_path}/nats/data"}


def test_without_a_directory_the_statefulset_is_config_s_own() -> None:
    manifests = local_deployments(sorted(DEPLOYMENTS.glob("*.yaml")), Ports.free(), "10.244.0.1")
    [nats] = [m for m in manifests if m["kind"] == "StatefulSet"]
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def test_the_queue_is_a_component_deployment_with_plain_text_logs() -> None:
    manifests = local_deployments(sorted(DEPLOYMENTS.glob("*.yaml")), Ports.free(), "10.244.0.1")
    [queue] = [m for m in manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "knserve-queue"]
    args = queue["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[0] == "queue" and not any(arg.startswith("--log-format=") for arg in args)
