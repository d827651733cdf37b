"""`lacewing inject` / `uninject` on every supported kind: golden output and round trips."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lacewing.cli.commands.inject import InjectOptions, run_inject, run_uninject
from lacewing.cli.context import GlobalOptions, Output
from lacewing.errors import ClusterError, ClusterUnreachable, UsageError
from lacewing.install.values import build_values

INPUTS = Path(__file__).resolve().parents[2] / "golden" / "inject" / "input"
CASES = sorted(p.name for p in INPUTS.iterdir())
Golden = Callable[[str, str], None]


def _run(run: Any, options: InjectOptions, stdin: str = "", **kwargs: Any) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    output = Output(out=out, err=err)
    code = run(options, GlobalOptions(), output, stdin=io.StringIO(stdin), **kwargs)
    assert code == 0
    return out.getvalue(), err.getvalue()


def _inject(source: str, manual: bool = False, **opts: Any) -> tuple[str, str]:
    options = InjectOptions((source,), manual=manual, ignore_cluster=manual, **opts)
    return _run(run_inject, options)


def _uninject_text(text: str) -> tuple[str, str]:
    return _run(run_uninject, InjectOptions(("-",)), stdin=text)


def _docs(text: str) -> list[Any]:
    if text.lstrip().startswith("{"):
        return [json.loads(text)]
    return [d for d in yaml.safe_load_all(text) if d is not None]


def _both(out: str, err: str) -> str:
    return f"{out}# stderr:\n{err}"


@pytest.mark.parametrize("case", CASES)
def test_inject_annotates(case: str, golden: Golden) -> None:
    out, err = _inject(str(INPUTS / case))
    golden(f"inject/{case}.inject", _both(out, err))
    back, _ = _uninject_text(out)
    assert _docs(back) == _docs((INPUTS / case).read_text())


@pytest.mark.parametrize("case", CASES)
def test_inject_manual_and_uninject(case: str, golden: Golden) -> None:
    out, err = _inject(str(INPUTS / case), manual=True)
    golden(f"inject/{case}.manual", _both(out, err))
    back, back_err = _uninject_text(out)
    golden(f"inject/{case}.uninject", _both(back, back_err))
    assert _docs(back) == _docs((INPUTS / case).read_text())  # the round trip is exact


def _pods_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each injectable object with its template made a Pod, as the API server would create."""
    from lacewing.controller.injector.workloads import pod_template

    if doc.get("kind") == "List":
        return [p for item in doc["items"] for p in _pods_of(item)]
    template = pod_template(copy.deepcopy(doc))
    if template is None or doc.get("kind") == "Pod":
        return [doc] if template is not None else []
    meta = {**template.get("metadata", {}), "name": "x"}
    return [{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]}]


@pytest.mark.parametrize("version", ["1.28", "1.34"])
def test_manually_injected_output_is_valid_kubernetes(version: str) -> None:
    checked = 0
    for case in CASES:
        out, _ = _inject(str(INPUTS / case), manual=True)
        for doc in _docs(out):
            for obj in doc["items"] if doc["kind"] == "List" else [doc]:  # List has no schema
                kubernetes_validate.validate(copy.deepcopy(obj), version, strict=True)
            for pod in _pods_of(doc):
                kubernetes_validate.validate(pod, version, strict=True)
                checked += 1
    assert checked >= 9


def test_native_sidecar_flag_and_set() -> None:
    out, _ = _inject(
        str(INPUTS / "cronjob.yaml"),
        manual=True,
        native_sidecar=True,
        sets=("proxy.logLevel=warn",),
    )
    (doc,) = _docs(out)
    spec = doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["report"]
    proxy = spec["initContainers"][1]
    assert proxy["name"] == "lacewing-proxy" and proxy["restartPolicy"] == "Always"
    env = {e["name"]: e.get("value") for e in proxy["env"]}
    assert env["LACEWING_PROXY_LOG_LEVEL"] == "warn"


def test_manual_reads_values_from_the_cluster() -> None:
    seen: list[str] = []

    def source(options: InjectOptions, ctx: GlobalOptions) -> Any:
        seen.append(ctx.namespace)
        return build_values(overrides={"image": {"tag": "9.9.9"}})

    options = InjectOptions((str(INPUTS / "pod.yaml"),), manual=True)
    out, _ = _run(run_inject, options, values_source=source)
    (doc,) = _docs(out)
    assert doc["spec"]["containers"][0]["image"].endswith(":9.9.9")
    assert seen == ["lacewing"]

    def down(options: InjectOptions, ctx: GlobalOptions) -> Any:
        raise ClusterUnreachable("cannot reach the Kubernetes API at https://x")

    with pytest.raises(ClusterError) as err:
        _run(run_inject, options, values_source=down)
    assert "cannot read the install values" in err.value.message


def test_directory_and_stdin(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "skip.txt"):
        (tmp_path / name).write_text(
            (INPUTS / "pod.yaml").read_text().replace("name: debug", f"name: {name[0]}")
        )
    out, err = _inject(str(tmp_path))
    assert [d["metadata"]["name"] for d in _docs(out)] == ["a", "b"]
    assert err.count("injected") == 2
    out, err = _run(run_inject, InjectOptions(("-",)), stdin=(INPUTS / "job.yaml").read_text())
    assert _docs(out)[0]["spec"]["template"]["metadata"]["annotations"]["lacewing.io/inject"]
    assert err == 'job "migrate" injected\n'


def test_mistakes_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        _inject(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\nmetadata: [\n")
    with pytest.raises(UsageError, match="not valid YAML at line"):
        _inject(str(bad))
    bad.write_text('{"kind": ')
    with pytest.raises(UsageError, match="not valid JSON"):
        _inject(str(bad))
    with pytest.raises(UsageError, match="only apply with --manual"):
        _run(run_inject, InjectOptions((str(INPUTS / "pod.yaml"),), sets=("a=b",)))
    bad.write_text(
        "kind: Deployment\nmetadata: {name: a}\n---\nkind: Pod\nmetadata: {name: b}\nspec: {}\n"
        "---\n- not an object\n"
    )
    out, err = _inject(str(bad), manual=True)
    assert _docs(out) == _docs(bad.read_text())
    assert err.splitlines() == [
        'deployment "a" left unchanged: it has no pod template',
        'pod "b" left unchanged: the pod has no spec.containers',
        'document "" left unchanged: not a Kubernetes object',
    ]
    bad.write_text((INPUTS / "pod.yaml").read_text().replace("debug", "loud"))
    out, err = _inject(str(bad), manual=True)
    assert "skipped (invalid-annotation" in err
    assert _docs(out) == _docs(bad.read_text())


def test_the_cli_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from lacewing.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(["inject", "--manual", "--ignore-cluster", str(INPUTS / "pod.yaml")])
    assert done.value.code == 0
    assert "lacewing-proxy" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["uninject", str(tmp_path / "nope.yaml")])
    captured = capsys.readouterr()
    assert done.value.code == 2
    assert captured.err.startswith("Error: ") and "Traceback" not in captured.err
