#!/usr/bin/env bash
# podman's Docker-compatible API on a unix socket, for Docker clients (docker-py, which KFP's
# DockerRunner uses, and the docker CLI), with the project's containers.conf and storage.conf:
#
#   eval "$(infra/podman/socket.sh start)"   # prints export DOCKER_HOST=unix://...; reuses a
#                                            # service that already answers on that socket
#   infra/podman/socket.sh status
#   infra/podman/socket.sh stop              # ends the service this script started (pid file)
#
# The socket lives in $SCENE2IMG_PODMAN_DIR (default: $XDG_RUNTIME_DIR or /tmp, per user).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/infra/podman/containers.conf}
export CONTAINERS_STORAGE_CONF=${CONTAINERS_STORAGE_CONF:-$root/infra/podman/storage.conf}
dir=${SCENE2IMG_PODMAN_DIR:-${XDG_RUNTIME_DIR:-/tmp}/scene2img-podman-$(id -u)}
sock=$dir/podman.sock
pidfile=$dir/podman.pid
log=$dir/podman.log

answers() { curl -fsS --max-time 2 --unix-socket "$sock" http://podman/_ping >/dev/null 2>&1; }

case ${1:-} in
  start)
    if ! answers; then
      command -v podman >/dev/null || { echo "podman is not installed (make image-tools)" >&2; exit 1; }
      mkdir -p "$dir"
      rm -f "$sock"
      nohup podman system service --time=0 "unix://$sock" >"$log" 2>&1 &
      echo $! >"$pidfile"
      for _ in $(seq 100); do answers && break; sleep 0.1; done
      answers || { echo "podman's API did not answer on $sock within 10 s; see $log" >&2; exit 1; }
    fi
    echo "export DOCKER_HOST=unix://$sock"
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$pidfile" "$sock"
    fi
    ;;
  status)
    if answers; then echo "podman's API answers on $sock"; else echo "not answering on $sock"; exit 1; fi
    ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
