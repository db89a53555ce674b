"""The workstation boot script: syntax, shellcheck, and a run in a scratch root with stub commands."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from dsstack.constructs.workstation import BOOT_SCRIPT, render_boot_script

TEAM_PARAMETER = "/dsstack/demo/vision/metaflow/config"
TEAM_CONFIG = {"METAFLOW_DATASTORE_SYSROOT_S3": "s3://vision-bucket/metaflow",
               "METAFLOW_BATCH_JOB_QUEUE": "dsstack-demo-vision-cpu"}


def rendered(**overrides) -> str:
    values = {"user": "ann", "region": "us-east-1", "home_volume_id": "vol-0123456789abcdef0",
              "metaflow_config_parameter": TEAM_PARAMETER, "extra_packages": ["polars", "scikit-learn>=1.5,<2"]}
    values.update(overrides)
    return render_boot_script(**values)


@pytest.fixture
def script(tmp_path) -> Path:
    path = tmp_path / "boot.sh"
    path.write_text(rendered())
    return path


def test_template_and_rendered_script_parse(script):
    for path in (BOOT_SCRIPT, script):
        proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_shellcheck_is_clean(script):
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).with_name("shellcheck"))
    assert Path(shellcheck).exists(), "shellcheck missing: .venv/bin/pip install -e '.[dev]'"
    proc = subprocess.run([shellcheck, "--severity=style", str(BOOT_SCRIPT), str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_values_are_shell_quoted():
    text = rendered(user="ann", extra_packages=["x>=1;rm -rf /"])
    assert "EXTRA_PACKAGES=('x>=1;rm -rf /')" in text


def _stubs(bin_dir: Path, root: Path, *, blank: bool) -> None:
    """Stub system commands: each logs its call; `aws` answers only the team's parameter."""
    bin_dir.mkdir()
    calls = root / "calls.log"
    generic = f'#!/bin/bash\necho "$(basename "$0") $*" >> "{calls}"\n'
    for name in ("dnf", "useradd", "groupadd", "chown", "chmod", "mkfs.xfs", "systemctl", "mount", "sleep"):
        (bin_dir / name).write_text(generic)
    (bin_dir / "id").write_text(generic + "exit 1\n")  # the user does not exist yet
    (bin_dir / "getent").write_text(generic + "exit 2\n")
    (bin_dir / "mountpoint").write_text(generic + "exit 1\n")
    (bin_dir / "blkid").write_text(generic + ("exit 2\n" if blank else "echo TYPE=xfs\n"))
    (bin_dir / "pip-stub").write_text(f'#!/bin/bash\necho "pip $*" >> "{calls}"\n')
    (bin_dir / "python3.12").write_text(generic + f'mkdir -p "$3/bin" && cp "{bin_dir}/pip-stub" "$3/bin/pip" && '
                                        'cp "$3/bin/pip" "$3/bin/python"\n')
    (bin_dir / "aws").write_text(
        generic + f'for a in "$@"; do [ "$a" = "{TEAM_PARAMETER}" ] && {{ echo \'{json.dumps(TEAM_CONFIG)}\'; exit 0; }}; done\n'
        'echo "ParameterNotFound" >&2; exit 254\n')
    for path in bin_dir.iterdir():
        path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _run(script: Path, root: Path, bin_dir: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "DSSTACK_ROOT": str(root), "DSSTACK_POLL_SECONDS": "0"}
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=60)


def _scratch_root(tmp_path: Path, device: str, *, blank: bool) -> tuple[Path, Path]:
    """A root with /etc and the home volume's device node, and a bin dir of stubs."""
    root = tmp_path / "root"
    (root / device).parent.mkdir(parents=True)
    (root / device).touch()
    (root / "etc").mkdir()
    _stubs(tmp_path / "bin", root, blank=blank)
    return root, tmp_path / "bin"


def test_runs_in_a_scratch_root_and_writes_the_teams_metaflow_config(script, tmp_path):
    # Nitro: the volume shows up by its id (without '-') under /dev/disk/by-id.
    root, bin_dir = _scratch_root(tmp_path, "dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0",
                                  blank=True)

    first = _run(script, root, bin_dir)
    log = (root / "var/log/dsstack-workstation.log").read_text()
    assert first.returncode == 0, log
    written = root / "home/ann/.metaflowconfig/config.json"
    assert json.loads(written.read_text()) == TEAM_CONFIG
    calls = (root / "calls.log").read_text()
    assert "mkfs.xfs -L dsstack-home" in calls  # blank volume: formatted once
    assert f"aws ssm get-parameter --region us-east-1 --name {TEAM_PARAMETER}" in calls
    assert "scikit-learn>=1.5,<2" in calls and "metaflow==" in calls and "jupyterlab==" in calls
    assert "useradd --uid 2000" in calls
    unit = (root / "etc/systemd/system/dsstack-jupyterlab.service").read_text()
    assert "--ServerApp.ip=127.0.0.1 --ServerApp.port=8888" in unit and "User=ann" in unit
    assert (root / "etc/fstab").read_text().count("LABEL=dsstack-home /home/ann") == 1

    # Second boot (the volume now has a filesystem): idempotent, never formats again, one fstab line.
    _stubs_again = bin_dir.parent / "bin2"
    _stubs(_stubs_again, root, blank=False)
    (root / "calls.log").write_text("")
    second = _run(script, root, _stubs_again)
    assert second.returncode == 0, (root / "var/log/dsstack-workstation.log").read_text()
    assert "mkfs.xfs" not in (root / "calls.log").read_text()
    assert (root / "etc/fstab").read_text().count("LABEL=dsstack-home") == 1
    assert json.loads(written.read_text()) == TEAM_CONFIG


def test_another_teams_parameter_is_not_read(tmp_path):
    """A script rendered for another team asks for that team's parameter (the stub refuses it)."""
    root, bin_dir = _scratch_root(tmp_path, "dev/xvdf", blank=False)  # Xen: the volume is /dev/xvdf
    other = tmp_path / "other.sh"
    other.write_text(rendered(metaflow_config_parameter="/dsstack/demo/forecasting/metaflow/config"))
    proc = _run(other, root, bin_dir)
    assert proc.returncode == 1  # exactly one failed step: the Metaflow config
    assert not (root / "home/ann/.metaflowconfig/config.json").exists()
    assert "ERROR: step write_metaflow_config failed" in (root / "var/log/dsstack-workstation.log").read_text()

