"""The deployment files in deploy/ agree with the code: commands, options, config keys, images."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apache_beam
import pytest
import yaml
from apache_beam.options.pipeline_options import PipelineOptions

from newswatch.pipelines.cli import commands as cli
from newswatch.pipelines.cli import exits
from newswatch.pipelines.control.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCKERFILES = sorted(DEPLOY.glob("*/Dockerfile"))
YAML_FILES = sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))
CONFIG_FILES = sorted(DEPLOY.glob("*/config.yaml")) + [DEPLOY / "docker" / "default-config.yaml"]


def load_yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc is not None]


def manifest(name: str) -> dict[str, Any]:
    [doc] = load_yaml_documents(DEPLOY / "kubernetes" / name)
    return doc


def compose() -> dict[str, Any]:
    [doc] = load_yaml_documents(DEPLOY / "docker" / "compose.yaml")
    return doc


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def expand_shell(text: str) -> str:
    """Shell words with variables replaced: ${X:-default} by its default, others by 'X'."""
    text = text.replace('"$@"', "")
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)
    return re.sub(r"\$\$?\{?\w+\}?", "X", text)


def newswatch_commands_in_shell(script: str) -> Iterator[list[str]]:
    """Every `newswatch ...` command in a shell script, as argv after the program name."""
    joined = re.sub(r"\\\n\s*", " ", script)
    for match in re.finditer(r"(?m)^\s*(?:exec\s+)?newswatch\s+([^;&|\n]*)", joined):
        yield shlex.split(expand_shell(match.group(1)))


def beam_option_names() -> set[str]:
    return set(PipelineOptions([]).get_all_options(drop_default=False))


def parse_command(argv: list[str]) -> tuple[Any, list[str]]:
    """Parse like `newswatch` does; Beam options of `run` must all be real Beam options."""
    args, extra = cli.build_parser().parse_known_args(argv)
    if args.command == "run" and extra:
        given = PipelineOptions(extra).get_all_options(retain_unknown_options=True)
        assert set(given) <= beam_option_names(), f"not Beam options: {extra}"
    else:
        assert extra == [], f"unknown arguments to newswatch {args.command}: {extra}"
    return args, extra


def deployed_commands() -> Iterator[tuple[str, list[str]]]:
    """(where, argv) for every newswatch command line the deploy files run."""
    instructions = dict(dockerfile_instructions(DEPLOY / "docker" / "Dockerfile"))
    assert json.loads(instructions["ENTRYPOINT"]) == ["newswatch"]
    yield "docker/Dockerfile CMD", json.loads(instructions["CMD"])
    for name, service in compose()["services"].items():
        if not service.get("image", "").startswith("newswatch"):
            continue
        if service.get("entrypoint") == ["/bin/sh", "-c"]:
            [script] = service["command"]
            commands = list(newswatch_commands_in_shell(script))
            assert commands, f"compose service {name} runs no newswatch command"
            for argv in commands:
                yield f"compose {name}", argv
        else:
            yield f"compose {name}", service["command"]
    [container] = manifest("cronjob.yaml")["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ]
    yield "kubernetes CronJob", container["args"]
    [container] = manifest("stream.yaml")["spec"]["template"]["spec"]["containers"]
    yield "kubernetes stream Deployment", container["args"]
    for unit in ("newswatch-run.service", "newswatch-stream.service"):
        program, *argv = shlex.split(systemd_unit(unit)["Service"]["ExecStart"])
        assert program.endswith("/bin/newswatch")
        yield f"systemd {unit} ExecStart", argv
    for argv in newswatch_commands_in_shell((DEPLOY / "flink" / "run-flink.sh").read_text()):
        yield "flink run-flink.sh", argv
    dataflow = dataflow_main()
    yield (
        "dataflow main.py",
        dataflow.newswatch_args(
            ["--out=gs://bucket/nw", "--lock_ttl=7200", "--runner=DataflowRunner", "--project=p"]
        ),
    )


def systemd_unit(name: str = "newswatch-run.service") -> dict[str, dict[str, str]]:
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in (DEPLOY / "systemd" / name).read_text("utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return sections


def dataflow_main() -> Any:
    spec = importlib.util.spec_from_file_location("dataflow_main", DEPLOY / "dataflow" / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- files parse ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path: Path) -> None:
    assert load_yaml_documents(path)


def test_the_deploy_folder_has_what_the_issue_asks_for() -> None:
    expected = [
        "README.md",
        "docker/Dockerfile",
        "docker/compose.yaml",
        "kubernetes/cronjob.yaml",
        "kubernetes/configmap.yaml",
        "kubernetes/pvc.yaml",
        "systemd/newswatch-run.service",
        "systemd/newswatch-run.timer",
        "systemd/newswatch-stream.service",
        "kubernetes/stream.yaml",
        "flink/README.md",
        "flink/Dockerfile",
        "flink/run-flink.sh",
        "dataflow/README.md",
        "dataflow/Dockerfile",
        "dataflow/metadata.json",
    ]
    assert [name for name in expected if not (DEPLOY / name).is_file()] == []
    assert json.loads((DEPLOY / "dataflow" / "metadata.json").read_text("utf-8"))["parameters"]


# --- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, argv", [pytest.param(where, argv, id=where) for where, argv in deployed_commands()]
)
def test_every_deployed_command_parses_with_the_real_cli(where: str, argv: list[str]) -> None:
    args, beam_args = parse_command(argv)
    if args.command in ("run", "stream"):
        assert args.log_format == "json", f"{where}: schedulers get JSON logs"
        assert args.config, f"{where}: runs name their config"


def test_the_beam_option_check_catches_a_typo() -> None:
    with pytest.raises(AssertionError, match="not Beam options"):
        parse_command(["run", "--runner=FlinkRunner", "--flink_mastr=x:8081"])
    with pytest.raises(SystemExit):
        parse_command(["run", "--flink_version=0.9"])


def test_the_flink_launch_uses_the_portable_runner_with_the_worker_image() -> None:
    [argv] = newswatch_commands_in_shell((DEPLOY / "flink" / "run-flink.sh").read_text())
    _, beam_args = parse_command(argv)
    options = PipelineOptions(beam_args).get_all_options()
    assert options["runner"] == "FlinkRunner"
    assert options["flink_version"] in ("1.19", "1.20", "2.0", "2.1", "2.2")
    assert options["flink_submit_uber_jar"] is True
    assert options["environment_type"] == "X" and options["environment_config"] == "X"
    script = (DEPLOY / "flink" / "run-flink.sh").read_text()
    assert 'ENVIRONMENT_TYPE="${ENVIRONMENT_TYPE:-DOCKER}"' in script
    assert "WORKER_IMAGE" in script


def test_dataflow_template_parameters_are_newswatch_options() -> None:
    metadata = json.loads((DEPLOY / "dataflow" / "metadata.json").read_text("utf-8"))
    run_options = {option for action in run_parser()._actions for option in action.option_strings}
    main = dataflow_main()
    for parameter in metadata["parameters"]:
        [option] = main.newswatch_args([f"--{parameter['name']}=v"])[1:2]
        assert option.split("=")[0] in run_options, parameter["name"]
    args = main.newswatch_args(["--out=gs://b/x"])
    assert f"--config={DEPLOY / 'dataflow' / 'config.yaml'}" in args
    instructions = dockerfile_instructions(DEPLOY / "dataflow" / "Dockerfile")
    copied = [a for i, a in instructions if i == "COPY" and "deploy/dataflow/main.py" in a]
    assert copied == ["deploy/dataflow/main.py deploy/dataflow/config.yaml ./"]
    env = " ".join(a for i, a in instructions if i == "ENV")
    assert "FLEX_TEMPLATE_PYTHON_PY_FILE=/template/main.py" in env


def run_parser() -> Any:
    parser = cli.build_parser()
    [commands] = [a for a in parser._actions if a.dest == "command"]
    return commands.choices["run"]


# --- config files ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_deploy_config_is_accepted_by_the_config_parser(path: Path) -> None:
    config = load_config(str(path))  # raises ConfigError, naming the key, if not
    assert config.file == str(path)
    assert config.sources and config.alerts, "a deployed config reads and alerts"


def configmap_config(tmp_path: Path) -> Config:
    for key, text in manifest("configmap.yaml")["data"].items():
        (tmp_path / key).write_text(text, "utf-8")
    return load_config(str(tmp_path / "config.yaml"))


def test_the_configmap_config_and_topics_are_accepted(tmp_path: Path) -> None:
    config = configmap_config(tmp_path)
    assert [t.id for t in config.topics] == ["china-taiwan-military"]
    assert config.output == "/data"


def assert_pod_mounts_what_its_command_and_config_name(pod: dict[str, Any], config: Config) -> Any:
    """The pod's one container: config from the ConfigMap, output on the claim, password
    from the Secret, resources set, the image's user; returns its parsed command."""
    [container] = pod["containers"]
    args, _ = parse_command(container["args"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    config_dir, config_file = args.config.rsplit("/", 1)
    assert mounts[config_dir]["configMap"]["name"] == manifest("configmap.yaml")["metadata"]["name"]
    assert config_file in manifest("configmap.yaml")["data"]
    assert (
        mounts[config.output]["persistentVolumeClaim"]["claimName"]
        == (manifest("pvc.yaml")["metadata"]["name"])
    )
    password_vars = {
        s.security["sasl_plain_password_env"]
        for s in (*config.kafka_sources, *config.alerts)
        if "sasl_plain_password_env" in getattr(s, "security", {})
    }
    env = {e["name"]: e for e in container["env"]}
    assert password_vars and all("secretKeyRef" in env[v]["valueFrom"] for v in password_vars)
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
    assert pod["securityContext"]["runAsUser"] == image_user_id()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    return args


def test_the_cronjob_mounts_what_its_command_and_config_name(tmp_path: Path) -> None:
    config = configmap_config(tmp_path)
    job = manifest("cronjob.yaml")
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["spec"]["jobTemplate"]["spec"]["backoffLimit"] >= 1
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert assert_pod_mounts_what_its_command_and_config_name(pod, config).command == "run"
    failing = {
        code
        for rule in job["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
        if rule["action"] == "FailJob"
        for code in rule.get("onExitCodes", {}).get("values", [])
    }
    assert failing == {exits.EXIT_CONFIG, exits.EXIT_LOCK_HELD}
    kustomization = manifest("kustomization.yaml")
    assert sorted(kustomization["resources"]) == ["configmap.yaml", "cronjob.yaml", "pvc.yaml"]
    [container] = pod["containers"]
    assert [i["name"] for i in kustomization["images"]] == [container["image"]]


def test_the_stream_deployment_is_one_pod_that_drains_before_the_next(tmp_path: Path) -> None:
    config = configmap_config(tmp_path)
    deployment = manifest("stream.yaml")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    args = assert_pod_mounts_what_its_command_and_config_name(pod, config)
    assert args.command == "stream"
    # The drain (the open window's commit) fits in the grace period, with room to spare.
    assert pod["terminationGracePeriodSeconds"] >= config.stream.drain_timeout_s + 15
    # A killed pod's lock expires soon enough for the next pod, and is refreshed in time.
    assert args.lock_ttl <= 600
    assert args.max_runtime == 3600  # the hourly exit that hands memory back
    [container] = pod["containers"]
    assert (
        container["image"]
        == manifest("cronjob.yaml")["spec"]["jobTemplate"]["spec"]["template"]["spec"][
            "containers"
        ][0]["image"]
    )


def test_the_compose_stack_is_wired_to_its_config() -> None:
    stack = compose()
    services = stack["services"]
    config = load_config(str(DEPLOY / "docker" / "config.yaml"))
    run_service = services["newswatch-run"]
    assert "./config.yaml:/etc/newswatch/config.yaml:ro" in run_service["volumes"]
    assert config.output == "/data" and any(v.endswith(":/data") for v in run_service["volumes"])
    [run_argv] = newswatch_commands_in_shell(run_service["command"][0])
    assert parse_command(run_argv)[0].config == "/etc/newswatch/config.yaml"
    topics_script = services["kafka-topics"]["command"][0]
    wanted_topics = {s.topic for s in config.kafka_sources} | {
        a.topic for a in config.alerts if hasattr(a, "topic")
    }
    assert all(topic in topics_script for topic in wanted_topics)
    subscriber, _ = parse_command(services["alerts"]["command"])
    [kafka_alerts] = [a for a in config.alerts if hasattr(a, "topic")]
    assert subscriber.bootstrap == ",".join(kafka_alerts.bootstrap_servers)
    assert subscriber.alerts_topic == kafka_alerts.topic
    assert [s.bootstrap_servers for s in config.kafka_sources] == [("kafka:9092",)]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    dockerfile = Path(ROOT / run_service["build"]["context"].replace("../..", ".")).resolve()
    assert dockerfile == ROOT
    assert run_service["build"]["dockerfile"] == "deploy/docker/Dockerfile"


def test_the_systemd_units_match_the_cli() -> None:
    service = systemd_unit()["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] == "newswatch"
    assert service["SuccessExitStatus"] == str(exits.EXIT_LOCK_HELD)
    args, _ = parse_command(shlex.split(service["ExecStart"])[1:])
    assert args.config == "/etc/newswatch/config.yaml"
    config = load_config(str(DEPLOY / "systemd" / "config.yaml"))
    assert config.output.startswith("/var/lib/" + service["StateDirectory"] + "/")
    timer = systemd_unit("newswatch-run.timer")
    assert timer["Timer"]["Unit"] == "newswatch-run.service"
    assert timer["Install"]["WantedBy"] == "timers.target"
    venv = shlex.split(service["ExecStart"])[0].removesuffix("/bin/newswatch")
    assert f"python3.11 -m venv {venv}" in deploy_readme()


def test_the_systemd_stream_unit_restarts_on_failure_and_drains_on_stop() -> None:
    unit = systemd_unit("newswatch-stream.service")
    service, run = unit["Service"], systemd_unit()["Service"]
    # Started again after its hourly exit (0) and after failures, but not on a config error.
    assert service["Type"] == "simple" and service["Restart"] == "always"
    assert service["RestartPreventExitStatus"] == str(exits.EXIT_CONFIG)
    args, _ = parse_command(shlex.split(service["ExecStart"])[1:])
    assert args.command == "stream" and args.config == run_config_path(run)
    assert args.max_runtime == 3600
    config = load_config(str(DEPLOY / "systemd" / "config.yaml"))
    assert int(service["TimeoutStopSec"]) >= config.stream.drain_timeout_s + 15
    assert service["KillMode"] == "mixed"  # SIGTERM to the stream itself: the drain
    for key in ("User", "StateDirectory", "EnvironmentFile", "ProtectSystem", "NoNewPrivileges"):
        assert service[key] == run[key], key
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def run_config_path(service: dict[str, str]) -> str:
    args, _ = parse_command(shlex.split(service["ExecStart"])[1:])
    return str(args.config)


# --- images -----------------------------------------------------------------------------


def project_install_lines(text: str) -> list[str]:
    """Every `pip install` of the project itself (`.`), as written."""
    return [
        m.group(0).strip()
        for m in re.finditer(r"\bpip install\b[^\n&;`]*", text)
        if m.group(0).split()[-1] == "."
    ]


def dockerfile_run_text(path: Path) -> str:
    return "\n".join(a for i, a in dockerfile_instructions(path) if i == "RUN")


@pytest.mark.parametrize("readme", ["README.md", "deploy/README.md"])
def test_every_image_installs_newswatch_as_the_readme_does(readme: str) -> None:
    documented = set(project_install_lines((ROOT / readme).read_text("utf-8")))
    # A README may also show a development install (-e); the runtime install is this one.
    assert "pip install ." in documented, f"{readme} installs newswatch only with {documented}"
    for path in DOCKERFILES:
        assert project_install_lines(dockerfile_run_text(path)) == ["pip install ."], path


def test_every_image_gets_the_whole_package() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    needed = {"pyproject.toml", project["project"]["readme"]}
    needed |= set(project["tool"]["setuptools"]["package-dir"].values())
    for path in DOCKERFILES:
        copied: set[str] = set()
        for instruction, arguments in dockerfile_instructions(path):
            if instruction == "COPY" and not arguments.startswith("--from"):
                copied |= set(arguments.split()[:-1])
        assert needed <= copied, f"{path} does not copy {needed - copied}"
        # BuildKit reads <Dockerfile>.dockerignore: the context is only what is copied.
        ignore = [
            line
            for line in path.with_name("Dockerfile.dockerignore").read_text("utf-8").splitlines()
            if line and not line.startswith("#")
        ]
        assert ignore[0] == "**", f"{path}: the ignore file starts by excluding everything"
        assert [line for line in ignore if line.startswith("!")] == [
            f"!{source}" for source in _in_order(path)
        ]


def _in_order(path: Path) -> list[str]:
    sources: list[str] = []
    for instruction, arguments in dockerfile_instructions(path):
        if instruction == "COPY" and not arguments.startswith("--from"):
            sources += arguments.split()[:-1]
    return sources


def image_user_id() -> int:
    text = dockerfile_run_text(DEPLOY / "docker" / "Dockerfile")
    return int(re.search(r"useradd [^\n]*--uid (\d+)", text).group(1))  # type: ignore[union-attr]


def test_the_slim_image_is_multi_stage_and_runs_unprivileged() -> None:
    instructions = dockerfile_instructions(DEPLOY / "docker" / "Dockerfile")
    stages = [a for i, a in instructions if i == "FROM"]
    assert stages == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in instructions
    final = instructions[[i for i, _ in instructions].index("FROM", 4) :]
    final_text = " ".join(a for _, a in final)
    assert "pip install" not in final_text and "apt-get" not in final_text
    assert ("USER", "newswatch") in final
    assert ("COPY", "--from=build /opt/newswatch /opt/newswatch") in final
    # The model is a pinned runtime dependency, so `pip install .` bakes it into the image.
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert any(d.startswith("en-core-web-sm") and "==" in d for d in dependencies["dependencies"])


@pytest.mark.parametrize("name", ["flink", "dataflow"])
def test_worker_images_use_the_beam_sdk_harness_of_the_beam_we_run(name: str) -> None:
    instructions = dockerfile_instructions(DEPLOY / name / "Dockerfile")
    assert ("ARG", f"BEAM_VERSION={apache_beam.__version__}") in instructions
    froms = [a for i, a in instructions if i == "FROM"]
    assert froms[-1] == "apache/beam_python3.11_sdk:${BEAM_VERSION}"
    assert not any(i == "ENTRYPOINT" and "boot" not in a for i, a in instructions)
    env = " ".join(a for i, a in instructions if i == "ENV")
    assert "RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1" in env


# --- docs ----------------------------------------------------------------------------------


def deploy_readme() -> str:
    return (DEPLOY / "README.md").read_text("utf-8")


def test_exit_codes_are_documented_where_schedulers_read_them() -> None:
    codes = {
        exits.EXIT_OK: "success",
        exits.EXIT_CONFIG: "config",
        exits.EXIT_ALL_SOURCES_FAILED: "source",
        exits.EXIT_RUN_FAILED: "fail",
        exits.EXIT_LOCK_HELD: "lock",
    }
    table = dict(re.findall(r"(?m)^\| `?(\d+)`? \| (.+)$", deploy_readme()))
    assert set(table) == {str(c) for c in codes}
    for code, word in codes.items():
        assert word in table[str(code)].lower()
    for code in codes:
        assert re.search(rf"(?m)^\s+{code}\s", exits.__doc__ or ""), code


# --- worker code ---------------------------------------------------------------------------

# Modules of the batch pipeline that only ever run in the launching process (the command
# line, config, the lock), the start-up of a local worker process (it reads no data) and the
# Beam-filesystems helper itself, as paths under the repo.
LAUNCHER_ONLY = (
    "pipelines/cli/",
    "pipelines/control/config.py",
    "pipelines/control/worker_process.py",
    "pipelines/control/yaml_reader.py",
    "pipelines/control/lock.py",
    "connectors/filesystem.py",
)
LOCAL_READS = {"open", "read_text", "read_bytes", "scandir", "listdir", "iterdir", "glob"}


def batch_pipeline_modules() -> list[Path]:
    """The source files `newswatch run` and `reprocess` import (what a portable runner's
    workers unpickle), and those the NLP stage imports on a worker when it loads the model."""
    listing = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, newswatch.pipelines.run, newswatch.pipelines.reprocess\n"
            "import newswatch.pipelines.cli.commands, newswatch.pipelines.core.multilingual\n"
            "print('\\n'.join(m.__file__ for n, m in sys.modules.items()"
            " if n.startswith('newswatch.') and getattr(m, '__file__', None)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    paths = {Path(line).resolve() for line in listing.stdout.split()}
    return sorted(
        p
        for p in paths
        if p.suffix == ".py"
        and p.stem != "__init__"
        and not p.relative_to(ROOT).as_posix().startswith(LAUNCHER_ONLY)
    )


@pytest.mark.parametrize(
    "path", batch_pipeline_modules(), ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_worker_code_reads_files_only_through_beam_filesystems(path: Path) -> None:
    """On a cluster a local path names the worker's disk: workers use FileSystems or package data."""
    allowed_receivers = {"FileSystems", "readable", "resource", "opener", "self"}
    offending = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in LOCAL_READS:
            offending.append(f"line {node.lineno}: {func.id}()")
        elif isinstance(func, ast.Attribute) and func.attr in LOCAL_READS:
            receiver = func.value
            name = receiver.id if isinstance(receiver, ast.Name) else ast.unparse(receiver)
            package_data = name.startswith(("files(", "importlib.resources"))
            if name not in allowed_receivers and not package_data:
                offending.append(f"line {node.lineno}: {name}.{func.attr}()")
    assert offending == []


def test_the_worker_code_check_covers_the_stages() -> None:
    modules = {p.relative_to(ROOT).with_suffix("").as_posix() for p in batch_pipeline_modules()}
    assert {
        "connectors/rss/read",
        "connectors/rss/http_fetch",
        "connectors/kafka/read",
        "connectors/dataset/write",
        "connectors/dataset/rewrite",
        "pipelines/commit/manifest",
        "pipelines/commit/rewrite",
        "pipelines/stages/dedupe",
        "pipelines/core/nlp",
    } <= modules
