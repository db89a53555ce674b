#!/bin/bash
# dsstack workstation boot script (cloud-init user data, run on EVERY boot: idempotent).
#
# Rendered by dsstack/constructs/workstation.py: every placeholder (a name between double @) becomes a value of
# the team's config (shell-quoted) before this becomes user data. Everything it does is safe to repeat:
# the home volume is formatted only when it is blank, users/venvs are created only when missing,
# pip and systemd converge to the same state.
#
# DSSTACK_ROOT (tests only) prefixes every path this script writes, so it can run in a scratch root
# with stub commands on PATH.
set -euo pipefail

ROOT="${DSSTACK_ROOT:-}"
LOG="${ROOT}/var/log/dsstack-workstation.log"
mkdir -p "$(dirname "$LOG")"
exec >>"$LOG" 2>&1
echo "=== dsstack workstation boot $(date -u +%Y-%m-%dT%H:%M:%SZ) ==="

WS_USER=@@USER@@
WS_UID=@@UID@@
REGION=@@REGION@@
HOME_VOLUME_ID=@@HOME_VOLUME_ID@@
METAFLOW_CONFIG_PARAMETER=@@METAFLOW_CONFIG_PARAMETER@@
METAFLOW_VERSION=@@METAFLOW_VERSION@@
JUPYTERLAB_VERSION=@@JUPYTERLAB_VERSION@@
EXTRA_PACKAGES=(@@EXTRA_PACKAGES@@)
PYTHON=python3.12
VENV="${ROOT}/opt/dsstack/venv"
WS_HOME="${ROOT}/home/${WS_USER}"

log() { echo "[dsstack] $*"; }

# --- the home volume: attached by CloudFormation (AWS::EC2::VolumeAttachment), possibly after boot -----
find_home_device() {
  # Nitro instances expose EBS as NVMe with the volume id (without '-') as serial; Xen ones as xvdf.
  local by_id="${ROOT}/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${HOME_VOLUME_ID//-/}"
  for candidate in "$by_id" "${ROOT}/dev/xvdf" "${ROOT}/dev/sdf"; do
    if [ -e "$candidate" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

mount_home() {
  local device="" attempt
  for attempt in $(seq 1 120); do  # the attachment is created after the instance: wait up to 10 minutes
    if device="$(find_home_device)"; then
      break
    fi
    log "home volume ${HOME_VOLUME_ID} not attached yet (attempt ${attempt}), waiting"
    sleep "${DSSTACK_POLL_SECONDS:-5}"
  done
  if [ -z "$device" ]; then
    log "ERROR: home volume ${HOME_VOLUME_ID} never appeared; the user's home stays on the root volume"
    return 1
  fi
  # Format only a blank volume: blkid exits 2 when it finds no filesystem signature. Any existing data
  # (a home carried over from a replaced instance) is never touched.
  local status=0
  blkid -p "$device" >/dev/null 2>&1 || status=$?
  if [ "$status" -eq 2 ]; then
    log "formatting blank home volume ${device}"
    mkfs.xfs -L dsstack-home "$device"
  elif [ "$status" -ne 0 ]; then
    log "ERROR: blkid failed on ${device} (exit ${status}); not formatting"
    return 1
  fi
  mkdir -p "$WS_HOME"
  if ! grep -q "LABEL=dsstack-home" "${ROOT}/etc/fstab" 2>/dev/null; then
    # nofail: a missing volume must never stop the instance from booting (SSM stays reachable).
    echo "LABEL=dsstack-home /home/${WS_USER} xfs defaults,nofail 0 2" >>"${ROOT}/etc/fstab"
  fi
  if ! mountpoint -q "$WS_HOME"; then
    mount "$WS_HOME"
  fi
}

# --- the Linux user (fixed uid so files on the home volume keep their owner across instances) -------
ensure_user() {
  if ! getent group "$WS_USER" >/dev/null 2>&1; then
    groupadd --gid "$WS_UID" "$WS_USER"
  fi
  if ! id "$WS_USER" >/dev/null 2>&1; then
    useradd --uid "$WS_UID" --gid "$WS_UID" --no-create-home --home-dir "/home/${WS_USER}" --shell /bin/bash "$WS_USER"
  fi
  chown "${WS_UID}:${WS_UID}" "$WS_HOME"
}

# --- Python, JupyterLab, Metaflow and the team's extra packages --------------------------------------
install_python() {
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    dnf install -y python3.12 python3.12-pip
  fi
  if [ ! -x "${VENV}/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  # A failed install (e.g. no internet in egress: private without a package mirror) is logged; the
  # rest of the boot (home, Metaflow config) still happens so the user can fix it from a session.
  if ! "${VENV}/bin/pip" install --quiet --upgrade "jupyterlab==${JUPYTERLAB_VERSION}" \
      "metaflow==${METAFLOW_VERSION}" boto3 "${EXTRA_PACKAGES[@]}"; then
    log "ERROR: pip install failed; see above. JupyterLab or packages may be missing."
  fi
}

# --- the team's Metaflow config, read from SSM on every boot (it changes when the platform does) ------
write_metaflow_config() {
  local config_dir="${WS_HOME}/.metaflowconfig" value="" attempt
  for attempt in 1 2 3 4 5; do
    if value="$(aws ssm get-parameter --region "$REGION" --name "$METAFLOW_CONFIG_PARAMETER" \
        --query Parameter.Value --output text)"; then
      break
    fi
    log "cannot read ${METAFLOW_CONFIG_PARAMETER} yet (attempt ${attempt})"
    value=""
    sleep "${DSSTACK_POLL_SECONDS:-5}"
  done
  if [ -z "$value" ]; then
    log "ERROR: ${METAFLOW_CONFIG_PARAMETER} not readable; ~/.metaflowconfig/config.json left unchanged"
    return 1
  fi
  mkdir -p "$config_dir"
  # Write then rename: a half-written config never replaces a good one.
  printf '%s\n' "$value" >"${config_dir}/config.json.tmp"
  mv "${config_dir}/config.json.tmp" "${config_dir}/config.json"
  chown -R "${WS_UID}:${WS_UID}" "$config_dir"
  chmod 600 "${config_dir}/config.json"
  log "wrote ${config_dir}/config.json from ${METAFLOW_CONFIG_PARAMETER}"
}

# --- JupyterLab on localhost:8888 only; reached through an SSM port forward ---------------------------
install_jupyter_service() {
  local unit="${ROOT}/etc/systemd/system/dsstack-jupyterlab.service"
  mkdir -p "$(dirname "$unit")"
  cat >"$unit" <<UNIT
[Unit]
Description=dsstack JupyterLab for ${WS_USER} (localhost only, via SSM port forwarding)
After=network-online.target
Wants=network-online.target
RequiresMountsFor=/home/${WS_USER}

[Service]
User=${WS_USER}
WorkingDirectory=/home/${WS_USER}
Environment=AWS_DEFAULT_REGION=${REGION}
# No token: the server listens on 127.0.0.1 only, so the only way in is an SSM session, which IAM
# grants to this workstation's user alone (the per-user policy).
ExecStart=/opt/dsstack/venv/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=8888 --no-browser --IdentityProvider.token=
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
  systemctl daemon-reload
  systemctl enable dsstack-jupyterlab.service
  systemctl restart dsstack-jupyterlab.service
}

# Each step runs as a background subshell so `set -e` applies inside it (bash ignores errexit in
# functions called from `if`/`||`), and one failed step never prevents the others.
failures=0
finish_step() {
  if ! wait "$2"; then
    failures=$((failures + 1))
    log "ERROR: step $1 failed"
  fi
}
mount_home & finish_step mount_home "$!"
ensure_user & finish_step ensure_user "$!"
install_python & finish_step install_python "$!"
write_metaflow_config & finish_step write_metaflow_config "$!"
install_jupyter_service & finish_step install_jupyter_service "$!"
log "boot finished with ${failures} failed step(s)"
exit "$failures"
